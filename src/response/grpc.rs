//! The gRPC form of a rejection: which requests are gRPC, and the trailers-only answer
//! (`grpc-status`, `grpc-message`) they get instead of an HTTP status.

use std::fmt::Write as _;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderValue, Response};

use super::{ErrorResponder, Rejection};

impl Rejection {
    /// The gRPC status code of this rejection: `UNAUTHENTICATED` (16) for a missing,
    /// malformed or invalid token, `PERMISSION_DENIED` (7) for a missing permission,
    /// `UNAVAILABLE` (14) while keys have never loaded or a token state store does not
    /// answer.
    #[must_use]
    pub fn grpc_code(&self) -> u8 {
        self.error.kind().row().grpc
    }

    /// The answer for a gRPC client: a trailers-only response (HTTP 200,
    /// `content-type: application/grpc`, `grpc-status`, `grpc-message` with the same short
    /// description as HTTP) plus the `WWW-Authenticate` challenge and
    /// `Cache-Control: no-store`.
    #[must_use]
    pub fn to_grpc_response(&self) -> Response<Bytes> {
        let mut response = Response::new(Bytes::new());
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(
            "grpc-status",
            HeaderValue::from(u16::from(self.grpc_code())),
        );
        if let Ok(message) = HeaderValue::from_str(&grpc_message(self.description())) {
            headers.insert("grpc-message", message);
        }
        if let Some(challenge) = self.www_authenticate() {
            headers.insert(WWW_AUTHENTICATE, challenge);
        }
        if let Some(nonce) = self
            .dpop_nonce()
            .and_then(|n| HeaderValue::from_str(n).ok())
        {
            headers.insert("dpop-nonce", nonce);
        }
        response
    }
}

/// How a refusal answers the request it refuses.
///
/// In gRPC form when the request is gRPC: it arrives over HTTP/2 with a content type
/// starting with `application/grpc`. gRPC clients read `grpc-status`, not the HTTP
/// status; any other request, an HTTP/1.1 one that merely carries a gRPC content type
/// included, gets an HTTP answer from the configured responder. And with the error in
/// the DPoP challenge when the request used the DPoP scheme (RFC 9449 section 7.1): a
/// DPoP client reads that challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Protocol {
    grpc: bool,
    dpop_scheme: bool,
}

impl Protocol {
    /// A plain HTTP request with no DPoP scheme.
    pub(crate) const HTTP: Self = Self {
        grpc: false,
        dpop_scheme: false,
    };

    pub(crate) fn of(version: http::Version, headers: &http::HeaderMap) -> Self {
        let grpc = version == http::Version::HTTP_2
            && headers
                .get(CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
        let dpop_scheme = headers.get(AUTHORIZATION).is_some_and(|v| {
            v.as_bytes()
                .get(..5)
                .is_some_and(|scheme| scheme.eq_ignore_ascii_case(b"dpop "))
        });
        Self { grpc, dpop_scheme }
    }
}

/// Renders a rejection: the responder's response for HTTP, a trailers-only gRPC answer
/// for gRPC (the responder's body would mean nothing to a gRPC client).
pub(crate) fn render(
    responder: &dyn ErrorResponder,
    rejection: Rejection,
    protocol: Protocol,
) -> Response<Bytes> {
    let rejection = rejection.in_dpop_scheme(protocol.dpop_scheme);
    if protocol.grpc {
        rejection.to_grpc_response()
    } else {
        responder.respond(&rejection)
    }
}

/// Percent-encodes a `grpc-message` value as the gRPC HTTP/2 protocol requires.
fn grpc_message(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if (0x20..=0x7e).contains(&byte) && byte != b'%' {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::response::ChallengeParams;
    use http::StatusCode;

    #[test]
    fn grpc_answers_are_trailers_only() {
        let r = Rejection::insufficient(ChallengeParams::default(), ["write"], false);
        let resp = r.to_grpc_response();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["grpc-status"], "7");
        assert_eq!(resp.headers()["grpc-message"], "insufficient permission");
        assert_eq!(resp.headers()[CONTENT_TYPE], "application/grpc");
        assert_eq!(resp.headers()[CACHE_CONTROL], "no-store");
        assert!(resp.body().is_empty());
        assert_eq!(
            Rejection::new(ErrorKind::Expired, ChallengeParams::default()).grpc_code(),
            16
        );
        assert_eq!(
            Rejection::new(ErrorKind::KeysUnavailable, ChallengeParams::default()).grpc_code(),
            14
        );
        assert_eq!(grpc_message("50% done\n"), "50%25 done%0A");
    }

    #[test]
    fn only_http2_requests_with_a_grpc_content_type_are_grpc() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/grpc+proto"),
        );
        assert!(Protocol::of(http::Version::HTTP_2, &headers).grpc);
        assert!(!Protocol::of(http::Version::HTTP_11, &headers).grpc);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        assert!(!Protocol::of(http::Version::HTTP_2, &headers).grpc);
        assert_eq!(
            Protocol::of(http::Version::HTTP_2, &headers),
            Protocol::HTTP
        );
        headers.insert(AUTHORIZATION, HeaderValue::from_static("dPoP x.y.z"));
        assert!(Protocol::of(http::Version::HTTP_11, &headers).dpop_scheme);
    }
}
