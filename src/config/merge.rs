//! How a settings file is laid over the builder's model: named values replace, lists of
//! things are appended, tables merge key by key, nulls remove nothing; and the secrets
//! hidden when a configuration is printed.

use super::model::{Declared, without_password};

impl Declared {
    /// Lays `named` (options a file or the environment names, as a tree) over these:
    /// named values replace, lists are appended, tables merge key by key. `Err` has the
    /// path of a value that does not fit.
    pub(crate) fn overlay(&mut self, named: &serde_json::Value) -> Result<(), (String, String)> {
        // A profile presets options first; what the file names beside it then replaces
        // them, and `build()` checks the result against the profile's rules.
        if let Some(profile) = named.get("profile").filter(|p| !p.is_null()) {
            let profile = serde_json::from_value(profile.clone())
                .map_err(|e| ("profile".to_owned(), e.to_string()))?;
            super::lock::preset(self, profile);
        }
        let mut tree = serde_json::to_value(&*self).map_err(|e| (String::new(), e.to_string()))?;
        let mut named = named.clone();
        if let Some(named) = named.as_object_mut() {
            // Applied above, where a profile that holds more rules is kept.
            named.remove("profile");
        }
        canonical(&mut named);
        merge(&mut tree, &named, "");
        let mut merged: Self = serde_path_to_error::deserialize(tree)
            .map_err(|e| (e.path().to_string(), e.inner().to_string()))?;
        merged.keep_code_parts(self);
        *self = merged;
        Ok(())
    }

    /// Takes over what `code` holds beside the model (keys given as bytes, HTTP clients,
    /// secrets given in code) after `self` was rebuilt from `code` and a file: the
    /// sections the file did not replace keep them.
    pub(crate) fn keep_code_parts(&mut self, code: &mut Self) {
        for (merged, old) in self.issuers.iter_mut().zip(code.issuers.iter_mut()) {
            merged.keys = std::mem::take(&mut old.keys);
        }
        if let (Some(merged), Some(old)) = (&mut self.client_cert, &mut code.client_cert) {
            merged.secret = old.secret.take();
        }
        #[cfg(feature = "dpop")]
        if let (Some(merged), Some(old)) = (&mut self.dpop, &mut code.dpop) {
            merged.nonce_secret = old.nonce_secret.take();
        }
        #[cfg(feature = "remote")]
        {
            self.remote.client = code.remote.client.take();
        }
        #[cfg(feature = "introspection")]
        if let (Some(merged), Some(old)) = (&mut self.introspection, &mut code.introspection) {
            merged.keep_code_parts(old);
        }
    }
}

/// The keys the model also reads under another name (its `alias` attributes), and the
/// tables they are in.
const ALIASES: [(&str, &str, &str); 3] = [
    ("", "audience", "audiences"),
    ("/issuers/*", "audience", "audiences"),
    ("/state", "max_token_lifetime", "revocation_retention"),
];

/// Renames aliased keys to their names, and one audience to a list of one, so that a
/// named tree merges with a serialized one key for key.
fn canonical(named: &mut serde_json::Value) {
    use serde_json::Value;
    let rename = |table: &mut Value, alias: &str, name: &str| {
        if let Some(map) = table.as_object_mut()
            && let Some(value) = map.remove(alias)
        {
            let value = match value {
                Value::String(one) if name == "audiences" => Value::Array(vec![one.into()]),
                other => other,
            };
            map.insert(name.to_owned(), value);
        }
    };
    for (table, alias, name) in ALIASES {
        match table.strip_suffix("/*") {
            Some(list) => {
                if let Some(Value::Array(items)) = named.pointer_mut(list) {
                    for item in items {
                        rename(item, alias, name);
                    }
                }
            }
            None => {
                if let Some(found) = named.pointer_mut(table) {
                    rename(found, alias, name);
                }
            }
        }
    }
}

/// The lists a file adds to (more issuers, audiences, exemptions, requirements); every
/// other list, such as `algorithms` or `allowed_clients`, is replaced, so that a file
/// can never widen what code restricted by adding to it.
const APPENDED: [&str; 8] = [
    "/issuers",
    "/audiences",
    "/tenants",
    "/required_claims",
    "/required_permissions",
    "/permission_claims",
    "/exempt",
    "/resource/scopes",
];

fn merge(base: &mut serde_json::Value, named: &serde_json::Value, at: &str) {
    use serde_json::Value;
    match (base, named) {
        // A null names nothing: it never removes what code set.
        (_, Value::Null) => {}
        (Value::Object(base), Value::Object(named)) => {
            for (key, value) in named {
                match base.get_mut(key) {
                    Some(slot) => merge(slot, value, &format!("{at}/{key}")),
                    None => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (Value::Array(base), Value::Array(named)) if APPENDED.contains(&at) => {
            base.extend(named.iter().cloned());
        }
        (slot, value) => *slot = value.clone(),
    }
}

/// Replaces the secrets of a configuration tree: the introspection client secret and
/// any password in the state store URL.
pub(crate) fn redact(tree: &mut serde_json::Value) {
    use serde_json::Value;
    if let Some(secret) = tree.pointer_mut("/introspection/client_secret")
        && secret.is_string()
    {
        *secret = Value::from("<redacted>");
    }
    // An inline JWKS may hold symmetric keys.
    if let Some(Value::Array(issuers)) = tree.pointer_mut("/issuers") {
        for issuer in issuers {
            if let Some(jwks) = issuer.get_mut("jwks")
                && jwks.is_string()
            {
                *jwks = Value::from("<redacted>");
            }
        }
    }
    if let Some(store) = tree.pointer_mut("/state/store")
        && let Some(url) = store.as_str()
    {
        *store = Value::from(without_password(url));
    }
}
