//! Settings from `JWT_*` environment variables: the single-issuer case, with `*_FILE`
//! variants for secrets that container platforms mount as files. Each variable fills
//! its key of the configuration model; values are checked here only as far as the
//! variable's own name must be in the error.

use serde_json::{Map, Value, json};

use super::invalid;
use crate::error::ConfigError;
use crate::written as duration;

fn list(value: &str) -> Value {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(Value::from)
        .collect()
}

fn read_file(variable: &str, path: &str) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map(|text| text.trim_end_matches(['\r', '\n']).to_owned())
        .map_err(|e| invalid(variable, None, format!("{path}: {e}")))
}

/// `value` if it is one of `allowed`, else an error naming the variable.
fn one_of(name: &str, value: &str, allowed: &[&str]) -> Result<Value, ConfigError> {
    if allowed.contains(&value) {
        Ok(Value::from(value))
    } else {
        Err(invalid(
            name,
            None,
            format!("{value:?} is not {}", allowed.join(", ")),
        ))
    }
}

pub(super) fn read(
    prefix: &str,
    vars: impl Iterator<Item = (String, String)>,
) -> Result<Value, ConfigError> {
    let mut top = Map::new();
    let mut issuer = Map::new();
    let mut dpop = Map::new();
    for (name, value) in vars {
        let Some(key) = name.strip_prefix(prefix) else {
            continue;
        };
        let duration = |value: &str| {
            duration::parse(value)
                .map(|_| Value::from(value))
                .map_err(|e| invalid(&name, None, e))
        };
        match key {
            "ISSUER" => {
                issuer.insert("issuer".into(), value.into());
            }
            "AUDIENCE" | "AUDIENCES" => {
                issuer.insert("audiences".into(), list(&value));
            }
            "LEEWAY" => {
                top.insert("leeway".into(), duration(&value)?);
            }
            "MAX_LIFETIME" => {
                top.insert("max_lifetime".into(), duration(&value)?);
            }
            "ALGORITHMS" => {
                top.insert("algorithms".into(), list(&value));
            }
            "JWKS_URL" => {
                issuer.insert("jwks_url".into(), value.into());
            }
            "HMAC_SECRET_FILE" => {
                issuer.insert("hmac_secret_file".into(), value.into());
            }
            "HMAC_SECRET" => {
                return Err(invalid(
                    &name,
                    None,
                    "secrets are read from files: use the _FILE variant (a value in the environment is visible to every process that can read it)",
                ));
            }
            "REQUIRED_PERMISSIONS" => {
                top.insert("required_permissions".into(), list(&value));
            }
            "ALLOWED_CLIENTS" => {
                top.insert("allowed_clients".into(), list(&value));
            }
            "REALM" => {
                top.insert("realm".into(), value.into());
            }
            "MAX_TOKEN_LEN" => {
                let len: u64 = value.parse().map_err(|_| {
                    invalid(&name, None, format!("{value:?} is not a number of bytes"))
                })?;
                top.insert("max_token_len".into(), len.into());
            }
            "TYP" => {
                top.insert(
                    "typ".into(),
                    one_of(&name, &value, &["lenient", "access_token"])?,
                );
            }
            "PROFILE" => {
                top.insert(
                    "profile".into(),
                    one_of(&name, &value, &["fapi2", "rfc9068_strict"])?,
                );
            }
            "DPOP" => {
                let mode = one_of(&name, &value, &["off", "allowed", "required"])?;
                dpop.insert("mode".into(), mode);
            }
            "PUBLIC_URL" => {
                dpop.insert("public_base_url".into(), value.into());
            }
            "REPLAY_STORE" => {
                top.insert("state".into(), json!({ "store": value }));
            }
            "API_KEYS_FILE" => {
                top.insert("api_keys_settings".into(), json!({ "file": value }));
            }
            "REPLAY_STORE_FILE" => {
                let store = read_file(&name, &value)?;
                top.insert("state".into(), json!({ "store": store }));
            }
            _ => return Err(invalid(&name, None, "unknown variable")),
        }
    }
    if issuer.contains_key("issuer") {
        top.insert("issuers".into(), Value::Array(vec![Value::Object(issuer)]));
    }
    // `JWT_PUBLIC_URL` alone still says something: the public URL of a `[dpop]` table a
    // file turns on (without one, DPoP stays off and the URL is never read).
    if !dpop.is_empty() {
        top.insert("dpop".into(), Value::Object(dpop));
    }
    Ok(Value::Object(top))
}
