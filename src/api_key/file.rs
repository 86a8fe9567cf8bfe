//! The API keys file: a `prefix` and `[[api_keys]]` tables, read at every `build()` (so
//! a reload reads it again), in JSON, TOML (feature `config-toml`) or YAML (feature
//! `config-yaml`) by its extension.

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
/// line.
pub(crate) fn read(path: &Path) -> Result<KeysFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let parsed = match extension.to_ascii_lowercase().as_str() {
        "json" => serde_json::from_str(&text).map_err(|e| e.to_string()),
        #[cfg(feature = "config-toml")]
        "toml" => toml::from_str(&text).map_err(|e| e.to_string()),
        #[cfg(feature = "config-yaml")]
        "yaml" | "yml" => serde_saphyr::from_str(&text).map_err(|e| e.to_string()),
        other => Err(format!(
            "no reader for .{other} files (JSON always; TOML with feature config-toml, YAML with config-yaml)"
        )),
    };
    parsed.map_err(|e| format!("{}: {e}", path.display()))
}
