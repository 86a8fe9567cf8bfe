//! The API keys file: a `prefix` and `[[api_keys]]` tables, read at every `build()` (so
//! a reload reads it again) by the settings files' readers (feature `settings`): JSON,
//! TOML (feature `config-toml`) or YAML (feature `config-yaml`) by its extension.

use std::path::Path;

use super::ApiKey;

/// What an API keys file holds.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct KeysFile {
    /// The prefix of the keys; when the settings name one too, they must agree.
    pub(crate) prefix: Option<String>,
    pub(crate) api_keys: Vec<ApiKey>,
}

/// Reads and parses the file at `path`.
///
/// # Errors
///
/// The file does not read, its format is unknown or not compiled in, or it does not
/// parse; the message names the file and, where the parser gives them, the field and
/// line, never the file's text (the reload watcher logs it).
#[cfg(feature = "settings")]
pub(crate) fn read(path: &Path) -> Result<KeysFile, String> {
    crate::settings::read_file_as(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Without the settings readers, no file can be read.
#[cfg(not(feature = "settings"))]
pub(crate) fn read(path: &Path) -> Result<KeysFile, String> {
    Err(format!(
        "{}: an API keys file needs the feature `settings`",
        path.display()
    ))
}
