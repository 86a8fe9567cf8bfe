//! Configuration from files and the environment: a serde model of every declarative
//! option ([`Settings`]), read from TOML (feature `config-toml`), YAML (feature
//! `config-yaml`) or JSON, or from `JWT_*` environment variables, then applied to a
//! builder, where code-only options (closures, key stores, clocks, responders) join it.
//!
//! ```
//! use tower_jwt_auth::settings::{Format, Settings};
//!
//! let settings = Settings::parse(
//!     r#"{ "issuers": [{ "issuer": "https://idp.example.com/",
//!                       "audiences": ["https://api.example.com"] }],
//!          "leeway": "30s" }"#,
//!     Format::Json,
//! )?;
//! let config = settings.builder()?.build()?;
//! # let _ = config;
//! # Ok::<(), tower_jwt_auth::ConfigError>(())
//! ```
//!
//! Errors name the bad field's path (`issuers[1].audiences[0]`) and, where the format
//! gives one, its line. Reading settings never fetches anything.

mod convert;
mod duration;
mod env;
mod model;
#[cfg(feature = "watch")]
mod watch;

use std::path::Path;

pub use model::{
    CacheSettings, ClaimSettings, DpopSettings, ExemptSettings, FailureSetting, ForwardSettings,
    IntrospectionSettings, IssuerSettings, ModeSetting, RemoteSettings, ResourceFileSettings,
    Settings, StateSettings, SubjectSetting, TelemetrySettings, TokenSettings, TypSetting,
};
#[cfg(feature = "watch")]
#[cfg_attr(docsrs, doc(cfg(feature = "watch")))]
pub use watch::{FileWatcher, ReloadReason};

use crate::error::{ConfigError, ConfigErrorKind};

/// A configuration file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// JSON (always available).
    Json,
    /// TOML (feature `config-toml`).
    Toml,
    /// YAML (feature `config-yaml`).
    Yaml,
}

impl Format {
    /// The format a file name's extension names: `.json`, `.toml`, `.yaml` / `.yml`.
    #[must_use]
    pub fn of(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "json" => Some(Self::Json),
            "toml" => Some(Self::Toml),
            "yaml" | "yml" => Some(Self::Yaml),
            _ => None,
        }
    }
}

fn invalid(
    path: impl Into<String>,
    line: Option<usize>,
    message: impl std::fmt::Display,
) -> ConfigError {
    ConfigError::at(ConfigErrorKind::InvalidSettings, path, line, message)
}

impl Settings {
    /// Reads a file, in the format its extension names.
    ///
    /// # Errors
    ///
    /// The file cannot be read, has no known extension, or does not parse
    /// ([`ConfigErrorKind::InvalidSettings`], with the path and line of the bad field).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let format = Format::of(path).ok_or_else(|| {
            invalid(
                "",
                None,
                format!(
                    "{}: the extension must be .toml, .yaml, .yml or .json",
                    path.display()
                ),
            )
        })?;
        let text = std::fs::read_to_string(path)
            .map_err(|e| invalid("", None, format!("{}: {e}", path.display())))?;
        Self::parse(&text, format)
    }

    /// Parses settings text.
    ///
    /// # Errors
    ///
    /// The text does not parse, names an unknown field, or has a wrong type or a bad
    /// duration, reported with the field's path and, when known, its line; or the format's
    /// feature is off.
    pub fn parse(text: &str, format: Format) -> Result<Self, ConfigError> {
        match format {
            Format::Json => {
                let mut de = serde_json::Deserializer::from_str(text);
                let settings = serde_path_to_error::deserialize(&mut de).map_err(|e| {
                    let line = e.inner().line();
                    invalid(
                        e.path().to_string().trim_start_matches('.'),
                        Some(line),
                        e.inner(),
                    )
                })?;
                // Nothing may follow the object (a second one would be silently ignored).
                de.end().map_err(|e| invalid("", Some(e.line()), e))?;
                Ok(settings)
            }
            Format::Toml => parse_toml(text),
            Format::Yaml => parse_yaml(text),
        }
    }

    /// The common single-issuer case from environment variables with this prefix
    /// (`JWT_`): `ISSUER`, `AUDIENCE` (comma-separated), `LEEWAY`, `MAX_LIFETIME`,
    /// `ALGORITHMS`, `JWKS_URL`, `HMAC_SECRET_FILE` (`HMAC_SECRET` is refused: a secret
    /// in the environment is visible to every process that can read it),
    /// `REQUIRED_PERMISSIONS`,
    /// `ALLOWED_CLIENTS`, `REALM`, `MAX_TOKEN_LEN`, `TYP`, `DPOP`, `PUBLIC_URL`,
    /// `REPLAY_STORE` / `REPLAY_STORE_FILE`. `CONFIG`, `CACHE` and `INTROSPECTION_CLIENT`
    /// are left to the application; any other variable with the prefix is an error, so a
    /// typo does not go unnoticed.
    ///
    /// # Errors
    ///
    /// An unknown variable, a value that does not parse, or a `*_FILE` that cannot be
    /// read, named by the variable.
    pub fn from_env(prefix: &str) -> Result<Self, ConfigError> {
        Self::from_vars(prefix, std::env::vars())
    }

    /// [`from_env`](Self::from_env) over given variables (for tests, and for
    /// applications that read their environment themselves).
    ///
    /// # Errors
    ///
    /// As [`from_env`](Self::from_env).
    pub fn from_vars<I, K, V>(prefix: &str, vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        env::read(prefix, vars.into_iter().map(|(k, v)| (k.into(), v.into())))
    }
}

#[cfg(feature = "config-toml")]
fn parse_toml(text: &str) -> Result<Settings, ConfigError> {
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let de = toml::Deserializer::parse(text)
        .map_err(|e| invalid("", e.span().map(|s| line_of(s.start)), e.message()))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let line = e.inner().span().map(|s| line_of(s.start));
        invalid(e.path().to_string(), line, e.inner().message())
    })
}

#[cfg(not(feature = "config-toml"))]
fn parse_toml(_: &str) -> Result<Settings, ConfigError> {
    Err(invalid("", None, "TOML needs the feature `config-toml`"))
}

#[cfg(feature = "config-yaml")]
fn parse_yaml(text: &str) -> Result<Settings, ConfigError> {
    let mut path = String::new();
    serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            path = e.path().to_string();
            e.into_inner()
        })
    })
    .map_err(|e| {
        let line = e.location().map(|l| usize::try_from(l.line()).unwrap_or(0));
        invalid(path, line, e)
    })
}

#[cfg(not(feature = "config-yaml"))]
fn parse_yaml(_: &str) -> Result<Settings, ConfigError> {
    Err(invalid("", None, "YAML needs the feature `config-yaml`"))
}
