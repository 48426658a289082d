//! Where settings come from — the TOML file and the environment variables the service knows —
//! and how an error names its key the way its source spells it.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use figment::value::{Dict, Map, Value};
use figment::{Metadata, Profile, Provider};
use marque_markets::Market;
use serde::Deserialize;
use serde::de::{self, Visitor};

/// A setting that cannot be used. `Display` is one line: the key as its source spells it (a
/// file key like `markets.kg.database_url`, or a variable like `DATABASE_URL_MARQUE_KG`), the
/// file it is in, and what is expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}{}: {message}", .file.as_ref().map(|f| format!(" (in {f})")).unwrap_or_default())]
pub struct SettingsError {
    /// The key as its source spells it.
    pub key: String,
    /// The settings file, when the value came from one.
    pub file: Option<String>,
    /// What is wrong and what is expected.
    pub message: String,
}

impl SettingsError {
    pub(crate) fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            file: None,
            message: message.into(),
        }
    }
}

/// The name of the variable that sets the per-market `field` of `market`: `{FIELD}_{MARKET}`,
/// except the database URL, which keeps the seed's name `DATABASE_URL_MARQUE_{MARKET}`.
pub(crate) fn market_env_name(field: &str, market: &str) -> String {
    let market = market.to_ascii_uppercase();
    match field {
        "database_url" => format!("DATABASE_URL_MARQUE_{market}"),
        _ => format!("{}_{market}", field.to_ascii_uppercase()),
    }
}

/// The variable that sets the key at `path` (`["port"]` → `PORT`,
/// `["markets", "kg", "database_url"]` → `DATABASE_URL_MARQUE_KG`).
pub(crate) fn env_name(path: &[&str]) -> String {
    match path {
        ["markets", market, field] => market_env_name(field, market),
        _ => path.join(".").to_ascii_uppercase(),
    }
}

/// What keys exist: the top-level keys and the keys of a `[markets.*]` table.
pub(crate) struct Schema {
    pub(crate) top: Vec<&'static str>,
    pub(crate) market: &'static [&'static str],
}

impl Schema {
    /// Every known variable with the key path it sets.
    fn variables(&self) -> Vec<(String, Vec<String>)> {
        let mut vars: Vec<(String, Vec<String>)> = self
            .top
            .iter()
            .filter(|k| **k != "markets")
            .map(|k| (k.to_ascii_uppercase(), vec![(*k).to_owned()]))
            .collect();
        for m in Market::ALL {
            for field in self.market {
                let path = vec![
                    "markets".to_owned(),
                    m.code().to_owned(),
                    (*field).to_owned(),
                ];
                vars.push((market_env_name(field, m.code()), path));
            }
        }
        vars
    }
}

/// The field names of the struct `T` as serde sees them (after renames), read from its derived
/// `Deserialize` so the lists of known keys and variables are never written by hand.
pub(crate) fn field_names<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    struct Grab<'a>(&'a mut &'static [&'static str]);
    impl<'de> de::Deserializer<'de> for Grab<'_> {
        type Error = de::value::Error;
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("field names read"))
        }
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Grab(&mut fields));
    fields
}

/// The settings file, read and checked for unknown keys before anything is extracted.
pub(crate) struct FileSource {
    path: PathBuf,
    data: Dict,
}

impl FileSource {
    /// Reads the TOML file at `path` and refuses unknown keys.
    pub(crate) fn read(path: &Path, schema: &Schema) -> Result<Self, SettingsError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| SettingsError::new("--config", format!("cannot read `{shown}`: {e}")))?;
        let table: toml::Table = toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1))
                .unwrap_or(1);
            SettingsError::new(
                "--config",
                format!(
                    "`{shown}` is not valid TOML (line {line}): {}",
                    e.message().trim()
                ),
            )
        })?;
        check_keys(&table, schema).map_err(|(key, message)| SettingsError {
            key,
            file: Some(shown.clone()),
            message,
        })?;
        let data = Value::serialize(&table)
            .ok()
            .and_then(Value::into_dict)
            .unwrap_or_default();
        Ok(Self {
            path: path.to_owned(),
            data,
        })
    }
}

/// Refuses the first key that no setting has, naming it with its dotted path.
fn check_keys(table: &toml::Table, schema: &Schema) -> Result<(), (String, String)> {
    let one_of = |keys: &[&str]| format!("expected one of: {}", keys.join(", "));
    for (key, value) in table {
        if !schema.top.contains(&key.as_str()) {
            return Err((key.clone(), format!("unknown key; {}", one_of(&schema.top))));
        }
        if key != "markets" {
            continue;
        }
        // A `markets` that is not a table is left to extraction, which names the expected type.
        let Some(markets) = value.as_table() else {
            continue;
        };
        for (code, market) in markets {
            let codes: Vec<&str> = Market::ALL.iter().map(|m| m.code()).collect();
            if !codes.contains(&code.as_str()) {
                return Err((
                    format!("markets.{code}"),
                    format!("unknown market; {}", one_of(&codes)),
                ));
            }
            let Some(fields) = market.as_table() else {
                continue;
            };
            if let Some(field) = fields.keys().find(|f| !schema.market.contains(&f.as_str())) {
                return Err((
                    format!("markets.{code}.{field}"),
                    format!("unknown key; {}", one_of(schema.market)),
                ));
            }
        }
    }
    Ok(())
}

impl Provider for FileSource {
    fn metadata(&self) -> Metadata {
        Metadata::from("file", self.path.as_path())
            .interpolater(|_: &Profile, path: &[&str]| path.join("."))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.data.clone()))
    }
}

/// The environment variables the service knows (and no others), as nested keys. Values stay
/// text; figment's lossy extraction reads numbers from them.
pub(crate) struct EnvSource {
    data: Dict,
}

impl EnvSource {
    /// Collects the known variables that `lookup` finds set.
    pub(crate) fn collect(
        schema: &Schema,
        lookup: impl Fn(&str) -> Result<Option<String>, SettingsError>,
    ) -> Result<Self, SettingsError> {
        let mut data = Dict::new();
        for (var, path) in schema.variables() {
            if let Some(value) = lookup(&var)? {
                insert(&mut data, &path, Value::from(value));
            }
        }
        Ok(Self { data })
    }

    /// Reads the process environment; a variable that is not UTF-8 is an error naming it.
    pub(crate) fn process(schema: &Schema) -> Result<Self, SettingsError> {
        Self::collect(schema, |var| match std::env::var(var) {
            Ok(v) => Ok(Some(v)),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(SettingsError::new(var, "expected UTF-8 text"))
            }
        })
    }

    /// Reads the variables of `vars` (tests).
    pub(crate) fn from_map(schema: &Schema, vars: &HashMap<String, String>) -> Self {
        let data = schema
            .variables()
            .into_iter()
            .filter_map(|(var, path)| vars.get(&var).map(|v| (path, v.clone())))
            .fold(Dict::new(), |mut data, (path, v)| {
                insert(&mut data, &path, Value::from(v));
                data
            });
        Self { data }
    }
}

fn insert(dict: &mut Dict, path: &[String], value: Value) {
    match path {
        [] => {}
        [last] => {
            dict.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = dict
                .entry(first.clone())
                .or_insert_with(|| Value::from(Dict::new()));
            if let Value::Dict(_, inner) = entry {
                insert(inner, rest, value);
            }
        }
    }
}

impl Provider for EnvSource {
    fn metadata(&self) -> Metadata {
        Metadata::named(ENV_SOURCE).interpolater(|_: &Profile, path: &[&str]| env_name(path))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.data.clone()))
    }
}

/// The metadata name of [`EnvSource`].
const ENV_SOURCE: &str = "environment variable";

/// Keys whose values are never echoed in a message.
const SECRET_KEYS: [&str; 2] = ["secret_key", "database_url"];

/// How `key` (a dotted path) is spelled where its value came from, and the file it is in.
pub(crate) fn spelled(figment: &figment::Figment, key: &str) -> (String, Option<String>) {
    let path: Vec<&str> = key.split('.').collect();
    match figment.find_metadata(key) {
        Some(md) => (md.interpolate(&Profile::Default, &path), file_of(md)),
        None => (format!("{} / {key}", env_name(&path)), None),
    }
}

fn file_of(md: &Metadata) -> Option<String> {
    (md.name != ENV_SOURCE)
        .then(|| md.source.as_ref().map(ToString::to_string))
        .flatten()
}

/// The first error of `err` as one line naming the key.
pub(crate) fn describe(err: figment::Error) -> SettingsError {
    let Some(err) = err.into_iter().next() else {
        return SettingsError::new("settings", "unknown error");
    };
    let mut path: Vec<&str> = err.path.iter().map(String::as_str).collect();
    let secret = path.last().is_some_and(|k| SECRET_KEYS.contains(k));
    let message = match &err.kind {
        figment::error::Kind::InvalidType(actual, expected)
        | figment::error::Kind::InvalidValue(actual, expected) => {
            if secret {
                format!("expected {expected}")
            } else {
                format!("expected {expected}, found {actual}")
            }
        }
        figment::error::Kind::UnknownVariant(found, expected) => {
            format!("expected one of {}, found `{found}`", Quoted(expected))
        }
        figment::error::Kind::UnknownField(found, expected) => {
            path.push(found);
            format!("unknown key; expected one of {}", Quoted(expected))
        }
        figment::error::Kind::MissingField(field) => {
            path.push(field);
            "missing".to_owned()
        }
        other => other.to_string(),
    };
    let (key, file) = match &err.metadata {
        Some(md) => (md.interpolate(&Profile::Default, &path), file_of(md)),
        None => (path.join("."), None),
    };
    SettingsError {
        key: if key.is_empty() {
            "settings".to_owned()
        } else {
            key
        },
        file,
        message: message.replace('\n', " "),
    }
}

struct Quoted<'a>(&'a [&'static str]);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "`{v}`")?;
        }
        Ok(())
    }
}
