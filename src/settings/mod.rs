//! Configuration from files and the environment: [`Settings`] reads the declarative
//! options of the builder's own configuration model from TOML (feature `config-toml`),
//! YAML (feature `config-yaml`) or JSON, or from `JWT_*` environment variables, and lays
//! them over a builder, where code-only options (closures, key stores, clocks,
//! responders) join them. The file keys are the model's; `build()` checks them once.
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

mod env;
mod lines;
mod unique;
#[cfg(feature = "watch")]
mod watch;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;

#[cfg(feature = "watch")]
#[cfg_attr(docsrs, doc(cfg(feature = "watch")))]
pub use watch::{FileWatcher, ReloadReason};

use crate::config::model::Declared;
use crate::config::{JwtAuthConfigBuilder, LineFinder};
use crate::error::{ConfigError, ConfigErrorKind};

/// Options read from a settings file or the environment: only what the source names,
/// checked against the configuration model when read. [`apply`](Self::apply) lays them
/// over a builder; [`render`](Self::render) prints them with every default filled in.
#[derive(Clone)]
pub struct Settings {
    /// The options the source names, as a tree of the model's keys.
    named: Value,
    /// Finds the line of a field path in the source text.
    lines: Option<LineFinder>,
}

/// Shows the options as read, secrets redacted.
impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut named = self.named.clone();
        crate::config::merge::redact(&mut named);
        f.debug_tuple("Settings").field(&named).finish()
    }
}

/// Equal when they name the same options with the same values.
impl PartialEq for Settings {
    fn eq(&self, other: &Self) -> bool {
        self.named == other.named
    }
}

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

/// A settings text as a tree, nothing checked but the syntax and, for JSON, that no
/// object names a key twice (a tree keeps the last one silently; TOML and YAML refuse
/// duplicates themselves).
fn tree(text: &str, format: Format) -> Result<Value, ConfigError> {
    match format {
        Format::Json => {
            let mut de = serde_json::Deserializer::from_str(text);
            let _: unique::UniqueKeys = serde_path_to_error::deserialize(&mut de).map_err(|e| {
                let line = e.inner().line();
                invalid(root(e.path()), Some(line), e.inner())
            })?;
            de.end().map_err(|e| invalid("", Some(e.line()), e))?;
            serde_json::from_str(text).map_err(|e| invalid("", Some(e.line()), e))
        }
        Format::Toml => tree_toml(text),
        Format::Yaml => tree_yaml(text),
    }
}

/// A field path as errors show it: the root is the empty path, not `.`.
fn root(path: &serde_path_to_error::Path) -> String {
    match path.to_string().as_str() {
        "." => String::new(),
        other => other.to_owned(),
    }
}

/// A settings file's text and the format its extension names.
fn read(path: &Path) -> Result<(String, Format), ConfigError> {
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
    Ok((text, format))
}

/// A file of options beside the settings (the API keys file) read as settings files
/// are, and deserialized into `T`: the format its extension names, errors with the
/// message, the field's path and the line, never the source text.
pub(crate) fn read_file_as<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let (text, format) = read(path)?;
    serde_path_to_error::deserialize(tree(&text, format)?).map_err(|e| {
        let path = root(e.path());
        invalid(path.clone(), lines::find(&text, format, &path), e.inner())
    })
}

impl Settings {
    /// Reads a file, in the format its extension names.
    ///
    /// # Errors
    ///
    /// The file cannot be read, has no known extension, or does not parse
    /// ([`ConfigErrorKind::InvalidSettings`], with the path and line of the bad field).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let (text, format) = read(path.as_ref())?;
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
        let named = match format {
            Format::Json => {
                let mut de = serde_json::Deserializer::from_str(text);
                let _: Declared = serde_path_to_error::deserialize(&mut de).map_err(|e| {
                    let line = e.inner().line();
                    invalid(root(e.path()), Some(line), e.inner())
                })?;
                // Nothing may follow the object (a second one would be silently ignored).
                de.end().map_err(|e| invalid("", Some(e.line()), e))?;
                serde_json::from_str(text).map_err(|e| invalid("", Some(e.line()), e))?
            }
            Format::Toml => parse_toml(text)?,
            Format::Yaml => parse_yaml(text)?,
        };
        let text: Arc<str> = text.into();
        Ok(Self {
            named,
            lines: Some(Arc::new(move |path: &str| lines::find(&text, format, path))),
        })
    }

    /// Reads a file that holds, beside the options, one table of the application's own
    /// under `section` (a `[gate]` table, say), in the format its extension names. The
    /// table is deserialized into `T`, and every other key must be an option.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use tower_jwt_auth::settings::Settings;
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Server {
    ///     workers: u32,
    /// }
    ///
    /// let path = std::env::temp_dir().join(format!("settings-doc-{}.json", std::process::id()));
    /// std::fs::write(&path, r#"{ "leeway": "5s", "server": { "workers": 4 } }"#)?;
    /// let (settings, server) = Settings::from_file_with::<Server>(&path, "server")?;
    /// assert_eq!(server.map(|s| s.workers), Some(4));
    /// # let _ = settings;
    /// # std::fs::remove_file(&path)?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`from_file`](Self::from_file); a bad value in the section is named by its
    /// path under `section` (`gate.routes[0].path`) and, where the format gives one, its
    /// line.
    pub fn from_file_with<T: DeserializeOwned>(
        path: impl AsRef<Path>,
        section: &str,
    ) -> Result<(Self, Option<T>), ConfigError> {
        let (text, format) = read(path.as_ref())?;
        Self::parse_with(&text, format, section)
    }

    /// [`parse`](Self::parse) of text that holds, beside the options, one table of the
    /// application's own under `section`, deserialized into `T`. The table is taken out
    /// before the options are read: name it apart from every option's key.
    ///
    /// # Errors
    ///
    /// As [`from_file_with`](Self::from_file_with).
    pub fn parse_with<T: DeserializeOwned>(
        text: &str,
        format: Format,
        section: &str,
    ) -> Result<(Self, Option<T>), ConfigError> {
        let mut named = tree(text, format)?;
        let own = match &mut named {
            Value::Object(map) => map.remove(section),
            _ => None,
        };
        let line = |path: &str| lines::find(text, format, path);
        let _: Declared = serde_path_to_error::deserialize(&named).map_err(|e| {
            let path = root(e.path());
            invalid(path.clone(), line(&path), e.inner())
        })?;
        let own = own
            .map(|own| {
                serde_path_to_error::deserialize(own).map_err(|e| {
                    let path = match e.path().to_string().as_str() {
                        "." => section.to_owned(),
                        inner => format!("{section}.{inner}"),
                    };
                    invalid(path.clone(), line(&path), e.inner())
                })
            })
            .transpose()?;
        let text: Arc<str> = text.into();
        let settings = Self {
            named,
            lines: Some(Arc::new(move |path: &str| lines::find(&text, format, path))),
        };
        Ok((settings, own))
    }

    /// Lays these options over `builder`, which may hold code-only options (closures,
    /// key stores, a clock, a responder) and options of its own: what the settings name
    /// replaces the builder's value, lists are appended to the builder's, and tables
    /// merge key by key. Nothing is checked here but the shape: `build()` checks every
    /// option once, and its errors name the option's path and line in the file.
    ///
    /// # Errors
    ///
    /// A value that does not fit the option the builder holds
    /// ([`ConfigErrorKind::InvalidSettings`]).
    pub fn apply(
        self,
        mut builder: JwtAuthConfigBuilder,
    ) -> Result<JwtAuthConfigBuilder, ConfigError> {
        builder
            .declared
            .overlay(&self.named)
            .map_err(|(path, why)| invalid(path, None, why))?;
        builder.lines = self.lines.or(builder.lines);
        Ok(builder)
    }

    /// A builder with these settings.
    ///
    /// # Errors
    ///
    /// As [`apply`](Self::apply).
    pub fn builder(self) -> Result<JwtAuthConfigBuilder, ConfigError> {
        self.apply(JwtAuthConfigBuilder::default())
    }

    /// These settings as a file in `format`, with every option that has a default
    /// written out and secrets redacted (a client secret, a password in a store URL).
    /// Nothing is fetched or read: files the settings name are named, not opened.
    ///
    /// # Errors
    ///
    /// The format's feature is off.
    pub fn render(&self, format: Format) -> Result<String, ConfigError> {
        let mut effective = Declared::default();
        effective
            .overlay(&self.named)
            .map_err(|(path, why)| invalid(path, None, why))?;
        let mut tree = serde_json::to_value(&effective).map_err(|e| invalid("", None, e))?;
        crate::config::merge::redact(&mut tree);
        match format {
            Format::Json => serde_json::to_string_pretty(&tree).map_err(|e| invalid("", None, e)),
            Format::Toml => render_toml(&tree),
            Format::Yaml => render_yaml(&tree),
        }
    }

    /// The common single-issuer case from environment variables with this prefix
    /// (`JWT_`): `ISSUER`, `AUDIENCE` (comma-separated), `LEEWAY`, `MAX_LIFETIME`,
    /// `ALGORITHMS`, `JWKS_URL`, `HMAC_SECRET_FILE` (`HMAC_SECRET` is refused: a secret
    /// in the environment is visible to every process that can read it),
    /// `REQUIRED_PERMISSIONS`,
    /// `ALLOWED_CLIENTS`, `REALM`, `MAX_TOKEN_LEN`, `TYP`, `PROFILE` (`fapi2` or
    /// `rfc9068_strict`), `DPOP`, `PUBLIC_URL`, `REPLAY_STORE` / `REPLAY_STORE_FILE`,
    /// `API_KEYS_FILE`. Any other variable with the prefix is an
    /// error, so a typo does not go unnoticed: an application that reads variables of
    /// its own under the prefix passes the rest to [`from_vars`](Self::from_vars).
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
        let named = env::read(prefix, vars.into_iter().map(|(k, v)| (k.into(), v.into())))?;
        let _: Declared = serde_path_to_error::deserialize(&named)
            .map_err(|e| invalid(e.path().to_string(), None, e.inner()))?;
        Ok(Self { named, lines: None })
    }
}

#[cfg(feature = "config-toml")]
fn parse_toml(text: &str) -> Result<Value, ConfigError> {
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let de = toml::Deserializer::parse(text)
        .map_err(|e| invalid("", e.span().map(|s| line_of(s.start)), e.message()))?;
    let _: Declared = serde_path_to_error::deserialize(de).map_err(|e| {
        let line = e.inner().span().map(|s| line_of(s.start));
        invalid(e.path().to_string(), line, e.inner().message())
    })?;
    toml::from_str(text).map_err(|e| invalid("", None, e.message()))
}

/// A TOML text as a tree, nothing checked but the syntax.
#[cfg(feature = "config-toml")]
fn tree_toml(text: &str) -> Result<Value, ConfigError> {
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    toml::from_str(text).map_err(|e| invalid("", e.span().map(|s| line_of(s.start)), e.message()))
}

#[cfg(not(feature = "config-toml"))]
fn tree_toml(_: &str) -> Result<Value, ConfigError> {
    Err(invalid("", None, "TOML needs the feature `config-toml`"))
}

/// A YAML text as a tree, nothing checked but the syntax.
#[cfg(feature = "config-yaml")]
fn tree_yaml(text: &str) -> Result<Value, ConfigError> {
    serde_saphyr::from_str(text).map_err(|e| {
        let line = e.location().map(|l| usize::try_from(l.line()).unwrap_or(0));
        // The message and line alone: a snippet would copy the file's text.
        invalid("", line, e.without_snippet())
    })
}

#[cfg(not(feature = "config-yaml"))]
fn tree_yaml(_: &str) -> Result<Value, ConfigError> {
    Err(invalid("", None, "YAML needs the feature `config-yaml`"))
}

#[cfg(not(feature = "config-toml"))]
fn parse_toml(_: &str) -> Result<Value, ConfigError> {
    Err(invalid("", None, "TOML needs the feature `config-toml`"))
}

#[cfg(feature = "config-toml")]
fn render_toml(tree: &Value) -> Result<String, ConfigError> {
    toml::to_string(tree).map_err(|e| invalid("", None, e))
}

#[cfg(not(feature = "config-toml"))]
fn render_toml(_: &Value) -> Result<String, ConfigError> {
    Err(invalid("", None, "TOML needs the feature `config-toml`"))
}

#[cfg(feature = "config-yaml")]
fn parse_yaml(text: &str) -> Result<Value, ConfigError> {
    let mut path = String::new();
    let _: Declared = serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            path = e.path().to_string();
            e.into_inner()
        })
    })
    .map_err(|e| {
        let line = e.location().map(|l| usize::try_from(l.line()).unwrap_or(0));
        invalid(path, line, e)
    })?;
    serde_saphyr::from_str(text).map_err(|e| invalid("", None, e))
}

#[cfg(not(feature = "config-yaml"))]
fn parse_yaml(_: &str) -> Result<Value, ConfigError> {
    Err(invalid("", None, "YAML needs the feature `config-yaml`"))
}

#[cfg(feature = "config-yaml")]
fn render_yaml(tree: &Value) -> Result<String, ConfigError> {
    serde_saphyr::to_string(tree).map_err(|e| invalid("", None, e))
}

#[cfg(not(feature = "config-yaml"))]
fn render_yaml(_: &Value) -> Result<String, ConfigError> {
    Err(invalid("", None, "YAML needs the feature `config-yaml`"))
}
