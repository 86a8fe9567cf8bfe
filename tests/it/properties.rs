//! Property tests: arbitrary bytes and arbitrary mutations of a valid token are always
//! refused without a panic, and arbitrary `Authorization` values never panic the layer
//! or get a 5xx.

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

use crate::support::{AUDIENCE, ISSUER};
use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use http::{HeaderValue, Request, Response};
use proptest::prelude::*;
use tower::{Layer, Service};
use tower_jwt_auth::testing::{TestKey, TokenBuilder};
use tower_jwt_auth::{JwtAuthConfig, JwtAuthLayer, StandardClaims, Verifier};

fn key() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| TestKey::hmac().with_kid("prop"))
}

fn config() -> JwtAuthConfig {
    JwtAuthConfig::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .key_set(key().key_set())
        .build()
        .expect("config")
}

fn verifier() -> &'static Verifier {
    static VERIFIER: OnceLock<Verifier> = OnceLock::new();
    VERIFIER.get_or_init(|| Verifier::new(config()))
}

fn valid_token() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| {
        TokenBuilder::new(key())
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .permissions(["read"])
            .expires_in_secs(100 * 365 * 24 * 3600)
            .sign()
    })
}

const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_are_refused_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let text = String::from_utf8_lossy(&bytes);
        prop_assert!(verifier().verify::<StandardClaims>(&text).is_err());
    }

    #[test]
    fn arbitrary_jws_shaped_strings_are_refused(
        parts in proptest::collection::vec(proptest::collection::vec(proptest::sample::select(B64URL.to_vec()), 0..120), 1..6)
    ) {
        let text = parts
            .iter()
            .map(|p| String::from_utf8(p.clone()).expect("ascii"))
            .collect::<Vec<_>>()
            .join(".");
        prop_assert!(verifier().verify::<StandardClaims>(&text).is_err());
    }

    #[test]
    fn any_single_character_change_is_refused(position in any::<prop::sample::Index>(), replacement in proptest::sample::select(B64URL.to_vec())) {
        let original = valid_token();
        prop_assert!(verifier().verify::<StandardClaims>(original).is_ok());
        let mut bytes = original.as_bytes().to_vec();
        let at = position.index(bytes.len());
        prop_assume!(bytes[at] != replacement);
        bytes[at] = replacement;
        let mutated = String::from_utf8(bytes).expect("ascii");
        prop_assert!(verifier().verify::<StandardClaims>(&mutated).is_err(), "{mutated}");
    }

    #[test]
    fn any_bit_flip_is_refused(position in any::<prop::sample::Index>(), bit in 0u8..8) {
        let original = valid_token();
        let mut bytes = original.as_bytes().to_vec();
        let at = position.index(bytes.len());
        bytes[at] ^= 1 << bit;
        let mutated = String::from_utf8_lossy(&bytes).into_owned();
        prop_assert!(verifier().verify::<StandardClaims>(&mutated).is_err());
    }

    #[test]
    fn swapped_or_repeated_segments_are_refused(order in proptest::sample::select(vec![[1usize, 0, 2], [0, 2, 1], [2, 1, 0], [0, 0, 2], [1, 1, 2]])) {
        let parts: Vec<&str> = valid_token().split('.').collect();
        let shuffled = order.iter().map(|i| parts[*i]).collect::<Vec<_>>().join(".");
        prop_assert!(verifier().verify::<StandardClaims>(&shuffled).is_err());
    }

    #[test]
    fn padding_or_truncation_is_refused(segment in 0usize..3, cut in 1usize..4) {
        let parts: Vec<&str> = valid_token().split('.').collect();
        let decoded = URL_SAFE_NO_PAD.decode(parts[segment]).expect("b64");
        let mut padded = parts.clone();
        let with_padding = URL_SAFE.encode(&decoded);
        prop_assume!(with_padding != parts[segment]);
        padded[segment] = &with_padding;
        prop_assert!(verifier().verify::<StandardClaims>(&padded.join(".")).is_err());
        let mut truncated = parts.clone();
        let keep = parts[segment].len().saturating_sub(cut);
        truncated[segment] = &parts[segment][..keep];
        prop_assert!(verifier().verify::<StandardClaims>(&truncated.join(".")).is_err());
    }

    #[test]
    fn arbitrary_authorization_values_never_panic_or_5xx(value in proptest::collection::vec(any::<u8>(), 0..300), twice in any::<bool>()) {
        let Ok(value) = HeaderValue::from_bytes(&value) else {
            return Ok(());
        };
        let mut service = JwtAuthLayer::new(config()).layer(tower::service_fn(|_r: Request<String>| {
            std::future::ready(Ok::<_, Infallible>(Response::new(String::new())))
        }));
        let mut request = Request::new(String::new());
        request.headers_mut().append("authorization", value.clone());
        if twice {
            request.headers_mut().append("authorization", value);
        }
        let mut cx = Context::from_waker(Waker::noop());
        let Poll::Ready(Ok(response)) = pin!(service.call(request)).poll(&mut cx) else {
            panic!("static keys answer at once");
        };
        prop_assert!(response.status() == 401 || response.status() == 400, "{}", response.status());
    }
}

/// The status the layer answers for `Authorization: <value>`, with the verified-token
/// cache or without.
fn status_for(value: &HeaderValue, cached: bool) -> u16 {
    static LAYERS: OnceLock<[JwtAuthLayer; 2]> = OnceLock::new();
    let layers = LAYERS.get_or_init(|| {
        let cached = JwtAuthConfig::builder()
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .key_set(key().key_set())
            .cache(tower_jwt_auth::cache::CacheOptions::new())
            .build()
            .expect("config");
        [JwtAuthLayer::new(config()), JwtAuthLayer::new(cached)]
    });
    let mut service =
        layers[usize::from(cached)]
            .clone()
            .layer(tower::service_fn(|_r: Request<String>| {
                std::future::ready(Ok::<_, Infallible>(Response::new(String::new())))
            }));
    let mut request = Request::new(String::new());
    request.headers_mut().insert("authorization", value.clone());
    let mut cx = Context::from_waker(Waker::noop());
    let Poll::Ready(Ok(response)) = pin!(service.call(request)).poll(&mut cx) else {
        panic!("static keys answer at once");
    };
    response.status().as_u16()
}

/// RFC 6750's `b64token`, written out as the grammar says.
fn grammar_b64token(token: &[u8]) -> bool {
    let body = token.len() - token.iter().rev().take_while(|&&b| b == b'=').count();
    body > 0
        && token[..body]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// A bearer credential gets 400 exactly when it is outside the `b64token` grammar
    /// (bytes that are not UTF-8 included), with the cache and without, whether the rest
    /// of it is a valid token, a changed one or none; the layer checks the characters
    /// only where they can change the answer, and this holds it to the grammar.
    #[test]
    fn bearer_credentials_get_400_exactly_outside_the_grammar(
        at in any::<prop::sample::Index>(),
        byte in prop_oneof![
            3 => prop::sample::select(B64URL.to_vec()),
            2 => prop::sample::select(b" ,;=\"+/~\t".to_vec()),
            1 => 0x80u8..=0xff,
            1 => any::<u8>(),
        ],
        suffix in proptest::collection::vec(prop::sample::select(b"=a, .".to_vec()), 0..3),
        cached in any::<bool>(),
    ) {
        let mut token = valid_token().as_bytes().to_vec();
        let at = at.index(token.len());
        let changed = token[at] != byte;
        token[at] = byte;
        token.extend_from_slice(&suffix);
        let mut value = b"Bearer ".to_vec();
        value.extend_from_slice(&token);
        let Ok(header) = HeaderValue::from_bytes(&value) else {
            return Ok(());
        };
        // Spaces before the token, and spaces and tabs after it, are not part of it.
        let start = token.iter().take_while(|&&b| b == b' ').count();
        let end = token.len() - token.iter().rev().take_while(|&&b| b == b' ' || b == b'\t').count();
        let trimmed = token.get(start..end).unwrap_or_default();
        let status = status_for(&header, cached);
        if !grammar_b64token(trimmed) {
            prop_assert_eq!(status, 400);
        } else if trimmed == valid_token().as_bytes() {
            prop_assert_eq!(status, 200);
        } else {
            prop_assert!(changed || !suffix.is_empty());
            prop_assert_eq!(status, 401);
        }
        // Asked twice: a cache hit answers as the first verification did.
        prop_assert_eq!(status_for(&header, cached), status);
    }
}

#[test]
fn the_valid_token_really_is_valid() {
    assert!(verifier().verify::<StandardClaims>(valid_token()).is_ok());
}
