//! Settings from `JWT_*` environment variables: the single-issuer case, with `*_FILE`
//! variants for secrets that container platforms mount as files.

use std::path::PathBuf;

use super::duration;
use super::invalid;
use super::model::{
    DpopSettings, IssuerSettings, ModeSetting, Settings, StateSettings, TypSetting,
};
use crate::error::ConfigError;

/// Variables with the prefix that the application reads itself.
const LEFT_TO_THE_APPLICATION: [&str; 3] = ["CONFIG", "CACHE", "INTROSPECTION_CLIENT"];

fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn read_file(variable: &str, path: &str) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map(|text| text.trim_end_matches(['\r', '\n']).to_owned())
        .map_err(|e| invalid(variable, None, format!("{path}: {e}")))
}

pub(super) fn read(
    prefix: &str,
    vars: impl Iterator<Item = (String, String)>,
) -> Result<Settings, ConfigError> {
    let mut settings = Settings::default();
    let mut issuer = IssuerSettings::default();
    let mut state = StateSettings::default();
    let mut dpop_mode = None;
    let mut public_url = None;
    for (name, value) in vars {
        let Some(key) = name.strip_prefix(prefix) else {
            continue;
        };
        if LEFT_TO_THE_APPLICATION.contains(&key) {
            continue;
        }
        let mode = |value: &str| match value {
            "off" => Ok(ModeSetting::Off),
            "allowed" => Ok(ModeSetting::Allowed),
            "required" => Ok(ModeSetting::Required),
            other => Err(invalid(
                &name,
                None,
                format!("{other:?} is not off, allowed or required"),
            )),
        };
        match key {
            "ISSUER" => issuer.issuer = value,
            "AUDIENCE" | "AUDIENCES" => issuer.audiences = list(&value),
            "LEEWAY" => {
                settings.leeway =
                    Some(duration::parse(&value).map_err(|e| invalid(&name, None, e))?);
            }
            "MAX_LIFETIME" => {
                settings.max_lifetime =
                    Some(duration::parse(&value).map_err(|e| invalid(&name, None, e))?);
            }
            "ALGORITHMS" => settings.algorithms = Some(list(&value)),
            "JWKS_URL" => issuer.jwks_url = Some(value),
            "HMAC_SECRET_FILE" => issuer.hmac_secret_file = Some(PathBuf::from(value)),
            "HMAC_SECRET" => {
                return Err(invalid(
                    &name,
                    None,
                    "secrets are read from files: use the _FILE variant (a value in the environment is visible to every process that can read it)",
                ));
            }
            "REQUIRED_PERMISSIONS" => settings.required_permissions = list(&value),
            "ALLOWED_CLIENTS" => settings.allowed_clients = Some(list(&value)),
            "REALM" => settings.realm = Some(value),
            "MAX_TOKEN_LEN" => {
                settings.max_token_len = Some(value.parse().map_err(|_| {
                    invalid(&name, None, format!("{value:?} is not a number of bytes"))
                })?);
            }
            "TYP" => {
                settings.typ = Some(match value.as_str() {
                    "lenient" => TypSetting::Lenient,
                    "access_token" => TypSetting::AccessToken,
                    other => {
                        return Err(invalid(
                            &name,
                            None,
                            format!("{other:?} is not lenient or access_token"),
                        ));
                    }
                });
            }
            "DPOP" => dpop_mode = Some(mode(&value)?),
            "PUBLIC_URL" => public_url = Some(value),
            "REPLAY_STORE" => state.store = Some(value),
            "REPLAY_STORE_FILE" => state.store = Some(read_file(&name, &value)?),
            _ => return Err(invalid(&name, None, "unknown variable")),
        }
    }
    if !issuer.issuer.is_empty() {
        settings.issuers.push(issuer);
    }
    if state.store.is_some() {
        settings.state = Some(state);
    }
    if let Some(mode) = dpop_mode {
        settings.dpop = Some(DpopSettings {
            mode,
            algorithms: None,
            iat_window: None,
            max_live_proofs_per_key: None,
            public_base_url: public_url,
            trusted_url_extension: false,
            nonce_secret_file: None,
            nonce_lifetime: None,
        });
    }
    Ok(settings)
}
