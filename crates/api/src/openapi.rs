//! The OpenAPI 3.1 document, served at `/api-docs/openapi.json` and by Swagger UI at `/docs`.
//!
//! The document is made from the router: every route is an [`Endpoint`], built from the
//! `#[utoipa::path]` of its handler, and the server registers exactly the endpoints the document
//! lists (see [`crate::endpoints`]), at the path and method the attribute names. A handler without
//! `#[utoipa::path]` cannot be registered, so no route is served undocumented.
//!
//! Error responses are declared once, from the error table ([`ErrorKind`]): one response per
//! status under `components/responses`, with the [`ErrorBody`] schema and an example of each code
//! with its real English message. An operation names its error statuses with a description
//! listing its codes (`` `invalid_token` ``), and no body; it gets a reference to the shared
//! response, keeping its own description.

use std::collections::BTreeMap;

use actix_web::http::{Method, StatusCode};
use actix_web::{FromRequest, Handler, Responder, Route, web};
use marque_markets::Language;
use utoipa::openapi::example::ExampleBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{HttpMethod, Operation};
use utoipa::openapi::schema::{Schema, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, ObjectBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use crate::error::{ApiError, ErrorBody, ErrorKind};

/// The API description: info, tags and the bearer scheme here; paths, schemas and error
/// responses come from the router ([`FromRouter`]).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Marque Auth",
        description = "Phone-number authentication for multi-market e-commerce (KG, US). \
            Errors have the body `{\"success\": false, \"error\": \"<code>\", \"message\": \"<text>\"}`.",
    ),
    modifiers(&FromRouter, &BearerScheme, &ThisServer),
    tags(
        (name = "auth", description = "Phone login and tokens"),
        (name = "email", description = "Email-and-password accounts: registration, verification and reset links, sign-in (also as the OAuth2 password grant), linking an email to a phone account"),
        (name = "profile", description = "The signed-in shopper's profile"),
        (name = "addresses", description = "The signed-in shopper's delivery addresses"),
        (name = "payment-methods", description = "The signed-in shopper's saved payment methods"),
        (name = "notifications", description = "The signed-in shopper's notifications"),
        (name = "markets", description = "Served markets"),
        (name = "health", description = "Liveness and database state"),
        (name = "delivery", description = "Delivery reports from SMS and messenger providers (signed callbacks)"),
        (name = "admin", description = "Operators: users, sessions, audit log and outbox (`Authorization: Bearer <ADMIN_API_KEY>`; every route answers 404 while `ADMIN_API_KEY` is unset; every call is audited)"),
    )
)]
pub struct ApiDoc;

/// The description of the document's server: which setting gives its URL.
pub const SERVER_DESCRIPTION: &str = "This Marque service: its `PUBLIC_BASE_URL` setting \
    (`marque openapi` prints that URL here, or `http://{HOST}:{PORT}` when it is unset)";

/// The document with `url` (the service's `PUBLIC_BASE_URL`, or where it listens) as its only
/// server, for `marque openapi`: clients generated from it take it as their base URL.
pub fn with_server(mut doc: utoipa::openapi::OpenApi, url: &str) -> utoipa::openapi::OpenApi {
    doc.servers = Some(vec![server(url)]);
    doc
}

fn server(url: &str) -> utoipa::openapi::Server {
    utoipa::openapi::ServerBuilder::new()
        .url(url)
        .description(Some(SERVER_DESCRIPTION))
        .build()
}

/// Adds the server `/`: relative, i.e. the service that serves the document
/// (`/api-docs/openapi.json`, Swagger UI's "Try it out"). `marque openapi` replaces it with an
/// absolute URL from the settings ([`with_server`]).
struct ThisServer;

impl Modify for ThisServer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi.servers = Some(vec![server("/")]);
    }
}

/// A documented route: the operation of a handler's `#[utoipa::path]` and the handler.
pub struct Endpoint {
    path: String,
    methods: Vec<HttpMethod>,
    operation: Operation,
    schemas: Vec<(String, RefOr<Schema>)>,
    handler: String,
    route: Box<dyn Fn() -> Route>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("path", &self.path)
            .field("handler", &self.handler)
            .finish_non_exhaustive()
    }
}

/// First half of [`Endpoint::of`]: the documentation, waiting for its handler.
#[derive(Debug)]
pub struct Documented<D>(std::marker::PhantomData<D>);

impl<D> Documented<D>
where
    D: utoipa::Path + utoipa::__dev::SchemaReferences + for<'t> utoipa::__dev::Tags<'t>,
{
    /// The endpoint served by `handler`, at the path and methods of `D`.
    pub fn to<F, Args>(self, handler: F) -> Endpoint
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        let mut schemas = Vec::new();
        // The schemas the operation names (bodies), with the schemas they name in turn.
        <D as utoipa::__dev::SchemaReferences>::schemas(&mut schemas);
        // `#[derive(OpenApi)]` adds the `tag` of the attribute this way too.
        let mut operation = D::operation();
        let tags = operation.tags.get_or_insert_with(Vec::new);
        tags.extend(D::tags().into_iter().map(str::to_owned));
        Endpoint {
            path: D::path(),
            methods: D::methods(),
            operation: with_shared_errors(operation),
            schemas,
            handler: std::any::type_name::<F>().to_owned(),
            route: Box::new(move || web::route().to(handler.clone())),
        }
    }
}

impl Endpoint {
    /// Starts an endpoint from the `#[utoipa::path]` of a handler, e.g.
    /// `Endpoint::of::<routes::__path_send_code>().to(routes::send_code)`.
    pub fn of<D>() -> Documented<D> {
        Documented(std::marker::PhantomData)
    }

    /// The documented path, e.g. `/api/v1/auth/sessions/{id}`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The actix routes: one per documented method.
    pub fn routes(&self) -> impl Iterator<Item = Route> + '_ {
        self.methods
            .iter()
            .map(|m| (self.route)().method(actix_method(m)))
    }
}

fn actix_method(m: &HttpMethod) -> Method {
    match m {
        HttpMethod::Get => Method::GET,
        HttpMethod::Post => Method::POST,
        HttpMethod::Put => Method::PUT,
        HttpMethod::Delete => Method::DELETE,
        HttpMethod::Options => Method::OPTIONS,
        HttpMethod::Head => Method::HEAD,
        HttpMethod::Patch => Method::PATCH,
        HttpMethod::Trace => Method::TRACE,
    }
}

/// The name of the shared response of an error status, e.g. `UnprocessableEntity`.
fn response_name(status: StatusCode) -> String {
    status
        .canonical_reason()
        .unwrap_or("Error")
        .split(|c: char| !c.is_ascii_alphanumeric())
        .collect()
}

/// Whether an implied error applies to an operation.
type Applies = fn(&Operation) -> bool;

/// Errors every route of a kind answers with, added to its operation unless it names the status
/// itself: bearer routes (`security`) refuse a bad token, JSON-body routes a bad body, and both
/// kinds use their market's database.
const IMPLIED: [(&str, &str, Applies); 6] = [
    ("401", "`invalid_token`", |o| o.security.is_some()),
    ("400", "`invalid_json`", |o| o.request_body.is_some()),
    ("413", "`payload_too_large` (over 16 KiB)", |o| {
        o.request_body.is_some()
    }),
    ("415", "`unsupported_media_type`", |o| {
        o.request_body.is_some()
    }),
    ("422", "`validation_error` naming the field", |o| {
        o.request_body.is_some()
    }),
    (
        "503",
        "`service_unavailable`: the market database is down",
        |o| o.security.is_some() || o.request_body.is_some(),
    ),
];

/// Adds the [`IMPLIED`] errors, then replaces each error response without a body (status
/// 4xx/5xx) by a reference to the shared response of its status, keeping the operation's
/// description (the codes it answers with).
fn with_shared_errors(mut operation: Operation) -> Operation {
    for (status, description, applies) in IMPLIED {
        if applies(&operation) {
            let responses = &mut operation.responses.responses;
            responses
                .entry(status.to_owned())
                .or_insert_with(|| RefOr::T(Response::new(description)));
        }
    }
    for (status, response) in operation.responses.responses.iter_mut() {
        let Some(status) = status
            .parse::<u16>()
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok())
        else {
            continue;
        };
        if let RefOr::T(r) = response
            && r.content.is_empty()
            && (status.is_client_error() || status.is_server_error())
        {
            let mut reference = Ref::from_response_name(response_name(status));
            reference.description = std::mem::take(&mut r.description);
            *response = RefOr::Ref(reference);
        }
    }
    operation
}

/// The shared error responses: one per status of the error table, with an example of each code.
fn error_responses() -> BTreeMap<String, RefOr<Response>> {
    let mut by_status: BTreeMap<StatusCode, Vec<ApiError>> = BTreeMap::new();
    for kind in ErrorKind::examples() {
        let e = ApiError::new(kind, Language::En);
        by_status
            .entry(actix_web::ResponseError::status_code(&e))
            .or_default()
            .push(e);
    }
    by_status
        .into_iter()
        .map(|(status, errors)| {
            let codes: Vec<String> = errors.iter().map(|e| format!("`{}`", e.code())).collect();
            let examples = errors.iter().map(|e| {
                let body = e.body();
                let example = ExampleBuilder::new()
                    .summary(body.message.clone())
                    .value(serde_json::to_value(&body).ok())
                    .build();
                (e.code(), example)
            });
            let content = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(ErrorBody::name())))
                .examples_from_iter(examples);
            let mut response = ResponseBuilder::new()
                .description(format!(
                    "{}: {}",
                    status.canonical_reason().unwrap_or("Error"),
                    codes.join(", ")
                ))
                .content("application/json", content.build());
            if status == StatusCode::TOO_MANY_REQUESTS {
                response = response.header("Retry-After", header("Seconds to wait", Type::Integer));
            }
            if status == StatusCode::UNAUTHORIZED {
                response = response.header(
                    "WWW-Authenticate",
                    header(
                        "`Bearer error=\"invalid_token\"` (RFC 6750); `Bearer realm=\"marque-admin\"` for `admin_unauthorized`",
                        Type::String,
                    ),
                );
            }
            (response_name(status), RefOr::T(response.build()))
        })
        .collect()
}

fn header(description: &str, ty: Type) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(ty))
        .description(Some(description))
        .build()
}

/// Adds the paths of every endpoint, the schemas they name and the shared error responses.
struct FromRouter;

impl Modify for FromRouter {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut schemas = vec![(ErrorBody::name().into_owned(), ErrorBody::schema())];
        ErrorBody::schemas(&mut schemas);
        for endpoint in crate::endpoints() {
            for method in &endpoint.methods {
                let operation = if *method == HttpMethod::Head {
                    head_operation(endpoint.operation.clone())
                } else {
                    endpoint.operation.clone()
                };
                openapi
                    .paths
                    .add_path_operation(&endpoint.path, vec![method.clone()], operation);
            }
            schemas.extend(endpoint.schemas);
        }
        components.schemas.extend(schemas);
        components.responses.extend(error_responses());
    }
}

/// The HEAD twin of a GET operation: its own operation id (ids are unique in a document) and
/// the same statuses without bodies.
fn head_operation(mut operation: Operation) -> Operation {
    operation.operation_id = operation.operation_id.map(|id| format!("{id}_head"));
    for response in operation.responses.responses.values_mut() {
        if let RefOr::T(r) = response {
            r.content.clear();
        }
    }
    operation
}

/// Adds the security schemes: `bearer` (the shoppers' JWT access tokens) and `admin_key` (the
/// operators' `ADMIN_API_KEY`, also sent as a bearer credential).
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.bearer_format = Some("JWT".to_owned());
        components.add_security_scheme("bearer", SecurityScheme::Http(http));
        let mut admin = Http::new(HttpAuthScheme::Bearer);
        admin.description = Some(
            "The admin API key (`ADMIN_API_KEY`), compared in constant time; the admin API is \
             off (404) while it is unset"
                .to_owned(),
        );
        components.add_security_scheme("admin_key", SecurityScheme::Http(admin));
        // Swagger UI's "Authorize" signs in with an email address and password through the
        // OAuth2 password grant (RFC 6749 §4.3) and sends the token it gets as a bearer token.
        let password = utoipa::openapi::security::Password::new(
            "/api/v1/auth/token",
            utoipa::openapi::security::Scopes::new(),
        );
        // Operations that take the bearer token take the token of that flow as well, so
        // Swagger UI sends it to them once authorized.
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
                &mut item.head,
            ];
            for operation in operations.into_iter().flatten() {
                let Some(security) = operation.security.as_mut() else {
                    continue;
                };
                let bearer = security
                    .iter()
                    .any(|r| serde_json::to_value(r).is_ok_and(|v| v.get("bearer").is_some()));
                if bearer {
                    security.push(utoipa::openapi::security::SecurityRequirement::new(
                        "oauth2_password",
                        Vec::<String>::new(),
                    ));
                }
            }
        }
        components.add_security_scheme(
            "oauth2_password",
            SecurityScheme::OAuth2(utoipa::openapi::security::OAuth2::with_description(
                [utoipa::openapi::security::Flow::Password(password)],
                "Sign in with an email account (issue 10); the access token is the same as verify-code's",
            )),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_is_served_by_the_handler_it_documents() {
        for e in crate::endpoints() {
            let id = e.operation.operation_id.clone().unwrap_or_default();
            assert!(
                e.handler.ends_with(&format!("::{id}")),
                "{} is documented as `{id}` but served by {}",
                e.path,
                e.handler
            );
        }
    }

    /// Each code an operation names under an error status is answered with that status.
    #[test]
    fn error_descriptions_name_codes_of_their_status() {
        let table: Vec<(String, StatusCode)> = ErrorKind::examples()
            .into_iter()
            .map(|k| {
                let e = ApiError::new(k, Language::En);
                (
                    e.code().to_owned(),
                    actix_web::ResponseError::status_code(&e),
                )
            })
            .collect();
        let responses = error_responses();
        for e in crate::endpoints() {
            for (status, response) in &e.operation.responses.responses {
                let RefOr::Ref(r) = response else { continue };
                let name = r.ref_location.rsplit('/').next().unwrap_or_default();
                assert!(responses.contains_key(name), "{} {status}: {name}", e.path);
                let codes: Vec<&str> = r.description.split('`').skip(1).step_by(2).collect();
                assert!(!codes.is_empty(), "{} {status}: no code named", e.path);
                for code in codes {
                    assert!(
                        table
                            .iter()
                            .any(|(c, s)| c == code && s.as_str() == status.as_str()),
                        "{} {status} names `{code}`, which the error table answers otherwise",
                        e.path
                    );
                }
            }
        }
    }
}
