//! Claim forwarding for proxies and sidecars: chosen claims copied into request headers
//! for the inner service, optionally the whole payload, optionally without the
//! `Authorization` header; never with the API key header. Headers of the forwarded
//! names are always removed from the incoming request first, so a client can never set
//! them.

use std::borrow::Cow;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::text::{Json, Text};

/// The compiled forwarding rules.
#[derive(Debug, Default, Clone)]
pub(crate) struct Forwarding {
    /// Each forwarded claim: its header and the index of the claim in the capture list.
    pub(crate) claims: Vec<(HeaderName, usize)>,
    /// The header that carries the whole verified payload, base64url-encoded.
    pub(crate) payload: Option<HeaderName>,
    pub(crate) remove_authorization: bool,
    /// The configured API key header: removed from every admitted request, so the key
    /// never reaches the inner service.
    pub(crate) api_key_header: Option<HeaderName>,
    /// API keys are configured: a key's `Authorization` header is removed too.
    pub(crate) api_keys: bool,
}

/// The headers a verified token forwards, computed once per verification and cached
/// with it.
pub(crate) type Forwarded = Arc<[(HeaderName, HeaderValue)]>;

impl Forwarding {
    pub(crate) fn is_empty(&self) -> bool {
        self.claims.is_empty()
            && self.payload.is_none()
            && !self.remove_authorization
            && self.api_key_header.is_none()
            && !self.api_keys
    }

    /// The header values of the forwarded claims of a verified payload. A string claim
    /// is forwarded as it is, anything else as its JSON text; a value that cannot be a
    /// header value (a control character) is left out.
    pub(crate) fn values(&self, captured: &[(usize, Json<'_>)]) -> Option<Forwarded> {
        if self.claims.is_empty() {
            return None;
        }
        let mut values = Vec::with_capacity(self.claims.len());
        for (header, index) in &self.claims {
            let Some((_, raw)) = captured.iter().find(|(i, _)| i == index) else {
                continue;
            };
            let text = match Text::from_json(*raw) {
                Some(Text(text)) => HeaderValue::from_str(&text),
                None => HeaderValue::from_str(raw.get()),
            };
            match text {
                Ok(value) => values.push((header.clone(), value)),
                Err(_) => {
                    tracing::debug!(header = %header, "a forwarded claim is not a valid header value; left out")
                }
            }
        }
        Some(values.into())
    }

    /// Removes every forwarded header a client sent; done for every request, whatever
    /// the outcome.
    pub(crate) fn scrub(&self, headers: &mut HeaderMap) {
        for name in self.names() {
            headers.remove(name);
        }
        // CGI-style gateways (CGI, WSGI, Rack, PHP-FPM) map `-` and `_` alike, so an
        // inner service there would read a client's `x_jwt_sub` as `x-jwt-sub` (and
        // `x-user` as a configured `x_user`).
        let spelled: Vec<HeaderName> = headers
            .keys()
            .filter(|k| self.names().any(|name| same_but_separators(k, name)))
            .cloned()
            .collect();
        for name in spelled {
            headers.remove(name);
        }
    }

    /// The names of the forwarded headers.
    fn names(&self) -> impl Iterator<Item = &HeaderName> {
        self.claims
            .iter()
            .map(|(name, _)| name)
            .chain(self.payload.as_ref())
    }

    /// Sets the forwarded headers of an admitted request; `payload` is an introspected
    /// token's verified answer (a JWT's payload is its middle segment).
    pub(crate) fn apply(
        &self,
        headers: &mut HeaderMap,
        forwarded: Option<&Forwarded>,
        token: &str,
        payload: Option<&[u8]>,
        api_key: bool,
    ) {
        if let Some(forwarded) = forwarded {
            for (name, value) in forwarded.iter() {
                headers.insert(name.clone(), value.clone());
            }
        }
        if let Some(name) = &self.payload {
            // A JWT's middle segment is its payload in base64url already.
            let encoded = match payload {
                Some(payload) => Cow::Owned(URL_SAFE_NO_PAD.encode(payload)),
                None => Cow::Borrowed(token.split('.').nth(1).unwrap_or_default()),
            };
            if let Ok(value) = HeaderValue::from_str(&encoded) {
                headers.insert(name.clone(), value);
            }
        }
        // A key is a long-lived secret: it never goes further than the layer, whatever
        // `remove_authorization` says for tokens.
        if self.remove_authorization || api_key {
            headers.remove(AUTHORIZATION);
        }
        // A credential in both the key header and `Authorization` is refused, so on an
        // admitted request the key header holds the key or nothing of use.
        if let Some(name) = &self.api_key_header {
            headers.remove(name);
        }
    }
}

/// Whether `sent` and `name` are the same once `_` and `-` are read alike (header names
/// are lowercase).
fn same_but_separators(sent: &HeaderName, name: &HeaderName) -> bool {
    let fold = |b: &u8| if *b == b'_' { b'-' } else { *b };
    let (sent, name) = (sent.as_str().as_bytes(), name.as_str().as_bytes());
    sent.len() == name.len() && sent.iter().map(fold).eq(name.iter().map(fold))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dashes_and_underscores_are_read_alike_both_ways() {
        let name = |s: &str| HeaderName::from_bytes(s.as_bytes()).expect("name");
        assert!(same_but_separators(&name("x_jwt_sub"), &name("x-jwt-sub")));
        assert!(same_but_separators(&name("x-jwt_sub"), &name("x-jwt-sub")));
        assert!(same_but_separators(&name("x-user"), &name("x_user")));
        assert!(!same_but_separators(&name("x-jwt-su"), &name("x-jwt-sub")));
        assert!(!same_but_separators(&name("x.jwt.sub"), &name("x-jwt-sub")));
    }
}
