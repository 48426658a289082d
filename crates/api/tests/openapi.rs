//! The whole OpenAPI document as a snapshot, so every API change is reviewed as a diff
//! (`cargo insta review`, or `INSTA_UPDATE=always` and `git diff`).

use utoipa::OpenApi;

#[test]
fn openapi_document() {
    insta::assert_json_snapshot!("openapi", marque_api::openapi::ApiDoc::openapi());
}
