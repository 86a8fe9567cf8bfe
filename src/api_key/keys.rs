//! The configured API keys, compiled: a hash map from the SHA-256 of a key to what the
//! configuration says of it (its payload, written once at `build()`, its permissions
//! and its expiry), and which credentials are keys (the prefix, the key header).

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use super::{ApiKey, hash};
use crate::issuer::{Issuer, IssuerMatch};
use crate::jwks::{KeySet, StaticKeys};
use crate::permission::Permissions;
use crate::record::TokenRecord;

/// The name of the stand-in issuer of API keys, for `Debug` and nothing else: API
/// keys' state keys have a tag of their own (`StateKey::api_key`), and neither spans,
/// the audit hook nor `Authentication::issuer` name it.
const STAND_IN: &str = "tower-jwt-auth:api-keys";

/// One configured key, compiled.
pub(super) struct Entry {
    /// `{"sub": id, "scope": "…", "exp": …}`: what every reader of a token's payload
    /// reads (claims, forwarding, the state step's keys).
    pub(super) payload: Box<[u8]>,
    pub(super) permissions: Permissions,
    /// Unix seconds; infinite for a key that never expires.
    pub(super) exp: f64,
    /// The records, each built on first use for one claims type (layers of several
    /// claims types share a configuration): a handful at most, read far more often
    /// than written.
    records: RwLock<Vec<(TypeId, Arc<TokenRecord>)>>,
}

impl Entry {
    /// The record built for claims of type `type_id`, if any.
    pub(super) fn record(&self, type_id: TypeId) -> Option<Arc<TokenRecord>> {
        let records = self.records.read().unwrap_or_else(PoisonError::into_inner);
        records
            .iter()
            .find(|(id, _)| *id == type_id)
            .map(|(_, record)| Arc::clone(record))
    }

    /// Keeps `record` for claims of type `type_id`; the first one kept wins.
    pub(super) fn keep(&self, type_id: TypeId, record: &Arc<TokenRecord>) -> Arc<TokenRecord> {
        let mut records = self.records.write().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, kept)) = records.iter().find(|(id, _)| *id == type_id) {
            return Arc::clone(kept);
        }
        records.push((type_id, Arc::clone(record)));
        Arc::clone(record)
    }
}

/// Which field of an [`ApiKey`] is wrong, and why.
pub(crate) struct Invalid {
    pub(crate) field: &'static str,
    pub(crate) message: String,
}

impl Entry {
    fn compile(key: &ApiKey) -> Result<([u8; 32], Self), Invalid> {
        let invalid = |field, message: &str| Invalid {
            field,
            message: message.to_owned(),
        };
        if key.id.is_empty() {
            return Err(invalid("id", "empty API key id"));
        }
        // Logged and forwarded as a header value: printable ASCII, no spaces.
        if !key.id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid(
                "id",
                "an API key id is printable ASCII without spaces",
            ));
        }
        let digest = parse_digest(&key.digest).ok_or_else(|| {
            invalid(
                "digest",
                "a digest is \"sha256:\" and 64 hex digits (the SHA-256 of the whole key)",
            )
        })?;
        if key.permissions.iter().any(String::is_empty) {
            return Err(invalid("permissions", "empty permission"));
        }
        // Joined by spaces into `scope`: one that is not a scope token would read as
        // two, or break the challenge's `scope`.
        if !key.permissions.iter().all(|p| p.bytes().all(is_scope_byte)) {
            return Err(invalid(
                "permissions",
                "a permission is an OAuth scope token (RFC 6749 section 3.3): printable ASCII without spaces, quotes or backslashes",
            ));
        }
        let exp = match &key.expires_at {
            None => None,
            Some(text) => Some(parse_rfc3339(text).ok_or_else(|| Invalid {
                field: "expires_at",
                message: format!(
                    "API key {:?}: {text:?} is not an RFC 3339 date-time from year 1 to 9999, such as 2027-01-01T00:00:00Z",
                    key.id
                ),
            })?),
        };
        let mut payload = serde_json::json!({
            "sub": key.id,
            "scope": key.permissions.join(" "),
        });
        if let Some(exp) = exp {
            payload["exp"] = exp.into();
        }
        let entry = Self {
            payload: serde_json::to_vec(&payload).unwrap_or_default().into(),
            permissions: key.permissions.iter().map(String::as_str).collect(),
            exp: exp.map_or(f64::INFINITY, |exp| exp as f64),
            records: RwLock::new(Vec::new()),
        };
        Ok((digest, entry))
    }
}

/// A byte of an OAuth scope token: `%x21 / %x23-5B / %x5D-7E`.
fn is_scope_byte(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

/// `sha256:` and 64 hex digits, as bytes.
fn parse_digest(text: &str) -> Option<[u8; 32]> {
    let hex = text.strip_prefix("sha256:")?.as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(hex.chunks(2)) {
        let digit = |c: u8| (c as char).to_digit(16);
        *byte = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(out)
}

/// Unix seconds of an RFC 3339 date-time.
fn parse_rfc3339(text: &str) -> Option<i64> {
    let at = ::time::OffsetDateTime::parse(text, &::time::format_description::well_known::Rfc3339)
        .ok()?;
    Some(at.unix_timestamp())
}

/// The configured API keys of one configuration.
pub(crate) struct ApiKeys {
    keys: HashMap<[u8; 32], Entry>,
    /// A credential with this prefix is a key and nothing else.
    prefix: Box<str>,
    /// What stands for the keys where the core and its readers name the source of a
    /// credential: no audiences, no algorithms, no signing keys; its name is read by
    /// `Debug` alone.
    issuer: Arc<Issuer>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeys")
            .field("keys", &self.keys.len())
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl ApiKeys {
    /// Compiles `keys` (each with the path of its table, for errors), refusing two keys
    /// with one digest.
    ///
    /// # Errors
    ///
    /// The path of the key and the field that is wrong, and why.
    pub(crate) fn compile<'a>(
        prefix: &str,
        keys: impl IntoIterator<Item = (String, &'a ApiKey)>,
    ) -> Result<Self, (String, Invalid)> {
        let mut map = HashMap::new();
        for (path, key) in keys {
            let (digest, entry) = Entry::compile(key).map_err(|e| (path.clone(), e))?;
            if map.insert(digest, entry).is_some() {
                return Err((
                    path,
                    Invalid {
                        field: "digest",
                        message: "two API keys have this digest".to_owned(),
                    },
                ));
            }
        }
        Ok(Self {
            keys: map,
            prefix: prefix.into(),
            issuer: Arc::new(Issuer {
                matcher: IssuerMatch::Exact(STAND_IN.into()),
                audiences: Vec::new(),
                algorithms: Vec::new(),
                store: Arc::new(StaticKeys::new(KeySet::new())),
                #[cfg(feature = "remote")]
                remote: None,
                #[cfg(feature = "remote")]
                remote_id: None,
            }),
        })
    }

    /// Whether `token` is an API key: it came in the key header, or starts with the
    /// prefix.
    pub(crate) fn takes(&self, token: &[u8], from_key_header: bool) -> bool {
        from_key_header || token.starts_with(self.prefix.as_bytes())
    }

    /// The key whose digest is the SHA-256 of `token`.
    pub(super) fn get(&self, token: &[u8]) -> Option<&Entry> {
        self.keys.get(&hash(token))
    }

    /// What stands for the keys as the source of a credential.
    pub(crate) fn stand_in(&self) -> &Arc<Issuer> {
        &self.issuer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_parse_in_either_case_and_nothing_else() {
        let hex = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let lower = parse_digest(&format!("sha256:{hex}"));
        assert!(lower.is_some());
        assert_eq!(
            parse_digest(&format!("sha256:{}", hex.to_uppercase())),
            lower
        );
        assert_eq!(parse_digest(hex), None);
        assert_eq!(parse_digest(&format!("sha256:{}", &hex[1..])), None);
        assert_eq!(parse_digest(&format!("sha256:{}g", &hex[1..])), None);
        assert_eq!(parse_digest("sha256:é"), None);
    }

    #[test]
    fn records_are_kept_per_claims_type_and_the_first_kept_wins() {
        let key = ApiKey::new("a", super::super::digest("k"));
        let (_, entry) = Entry::compile(&key).ok().expect("entry");
        let record = || Arc::new(TokenRecord::dated((f64::INFINITY, None, None)));
        let (first, second, other) = (record(), record(), record());
        let (a, b) = (TypeId::of::<u8>(), TypeId::of::<u16>());
        assert!(entry.record(a).is_none());
        assert!(Arc::ptr_eq(&entry.keep(a, &first), &first));
        assert!(Arc::ptr_eq(&entry.keep(a, &second), &first));
        assert!(Arc::ptr_eq(&entry.keep(b, &other), &other));
        assert!(Arc::ptr_eq(&entry.record(a).expect("a"), &first));
        assert!(Arc::ptr_eq(&entry.record(b).expect("b"), &other));
    }

    #[test]
    fn scope_tokens_leave_out_spaces_quotes_and_backslashes() {
        let all: Vec<u8> = (0u8..=0x7F).filter(|b| is_scope_byte(*b)).collect();
        assert_eq!(all.len(), 94 - 2);
        for b in [b' ', b'"', b'\\', 0x7F, b'\n'] {
            assert!(!is_scope_byte(b), "{b}");
        }
    }

    #[test]
    fn expiry_dates_are_rfc3339_with_any_offset() {
        assert_eq!(parse_rfc3339("1970-01-01T00:01:00Z"), Some(60));
        assert_eq!(parse_rfc3339("1970-01-01T01:01:00+01:00"), Some(60));
        assert_eq!(parse_rfc3339("1970-01-01"), None);
    }
}
