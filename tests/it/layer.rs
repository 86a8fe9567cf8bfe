//! The layer end to end: a real axum server on 127.0.0.1:0, a real HTTP client, tokens
//! from the test kit. Each test names the rule it proves.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use crate::support::{
    AUDIENCE, ISSUER, Server, builder, ec_key, ed_key, rsa_key, rsa_key_2, rsa_server, server_with,
    token,
};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::StatusCode;
use serde_json::json;
use tower_jwt_auth::jwks::KeySet;
use tower_jwt_auth::response::JsonResponder;
use tower_jwt_auth::testing::{TestKey, TokenBuilder, encode_json, jwks};
use tower_jwt_auth::time::ManualClock;
use tower_jwt_auth::{
    Algorithm, ConfigErrorKind, JwtAuthConfig, JwtAuthConfigBuilder, JwtAuthLayer, TokenSource,
    TrustedIssuer, TypPolicy,
};

// ---- the happy paths -------------------------------------------------------------

#[tokio::test]
async fn valid_tokens_of_every_algorithm_are_accepted() {
    let hmac = TestKey::hmac();
    let cases: Vec<(KeySet, String)> = vec![
        (rsa_key().key_set(), token(rsa_key()).sign()),
        (
            rsa_key().key_set(),
            token(rsa_key()).alg(Algorithm::RS384).sign(),
        ),
        (
            rsa_key().key_set(),
            token(rsa_key()).alg(Algorithm::RS512).sign(),
        ),
        (
            rsa_key().key_set(),
            token(rsa_key()).alg(Algorithm::PS256).sign(),
        ),
        (
            rsa_key().key_set(),
            token(rsa_key()).alg(Algorithm::PS384).sign(),
        ),
        (
            rsa_key().key_set(),
            token(rsa_key()).alg(Algorithm::PS512).sign(),
        ),
        (ec_key().key_set(), token(ec_key()).sign()),
        (
            crate::support::ec384_key().key_set(),
            token(crate::support::ec384_key()).sign(),
        ),
        (ed_key().key_set(), token(ed_key()).sign()),
        (hmac.key_set(), token(&hmac).sign()),
        (hmac.key_set(), token(&hmac).alg(Algorithm::HS512).sign()),
    ];
    for (keys, token) in cases {
        let server = server_with(keys).await;
        let answer = server.bearer(&token).await;
        answer.assert_ok();
        assert_eq!(answer.body, "test-user");
    }
}

#[tokio::test]
async fn pem_public_keys_verify_their_tokens() {
    for key in [rsa_key(), ec_key(), crate::support::ec384_key(), ed_key()] {
        let pem = key.public_pem().expect("public key");
        let cfg = JwtAuthConfig::builder()
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .pem(pem)
            .build()
            .expect("config");
        let server = Server::start(JwtAuthLayer::new(cfg)).await;
        server.bearer(&token(key).sign()).await.assert_ok();
    }
}

#[tokio::test]
async fn jwk_and_jwks_text_sources_verify_their_tokens() {
    let cfg = JwtAuthConfig::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .jwk(ec_key().public_jwk().to_string())
        .jwks(jwks([rsa_key(), ed_key()]).to_string())
        .build()
        .expect("config");
    let server = Server::start(JwtAuthLayer::new(cfg)).await;
    for key in [rsa_key(), ec_key(), ed_key()] {
        server.bearer(&token(key).sign()).await.assert_ok();
    }
}

#[tokio::test]
async fn bearer_token_reaches_the_handler() {
    let server = rsa_server().await;
    let token = token(rsa_key()).sign();
    let answer = server
        .get("/token", &[("authorization", &format!("Bearer {token}"))])
        .await;
    answer.assert_ok();
    assert_eq!(answer.body, token.len().to_string());
}

#[tokio::test]
async fn tokens_from_the_jsonwebtoken_crate_are_accepted() {
    // Interoperability: a token signed by another implementation verifies here.
    let secret = vec![9u8; 32];
    let cfg = JwtAuthConfig::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .hmac_secret(secret.clone())
        .build()
        .expect("config");
    let server = Server::start(JwtAuthLayer::new(cfg)).await;
    let claims = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "jwt-rs", "exp": 4_000_000_000u64});
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(&secret),
    )
    .expect("encode");
    let answer = server.bearer(&token).await;
    answer.assert_ok();
    assert_eq!(answer.body, "jwt-rs");
}

// ---- token source and malformed credentials ----------------

#[tokio::test]
async fn missing_token_gets_a_bare_challenge() {
    let server = rsa_server().await;
    let answer = server.get("/", &[]).await;
    answer.assert_no_token();
    assert_eq!(answer.challenge.as_deref(), Some("Bearer"));
}

#[tokio::test]
async fn realm_appears_in_every_challenge() {
    let cfg = builder(rsa_key().key_set())
        .realm("api")
        .build()
        .expect("config");
    let server = Server::start(JwtAuthLayer::new(cfg)).await;
    let answer = server.get("/", &[]).await;
    assert_eq!(answer.challenge.as_deref(), Some("Bearer realm=\"api\""));
    let answer = server.bearer(&token(rsa_key()).expired().sign()).await;
    assert_eq!(
        answer.challenge.as_deref(),
        Some("Bearer realm=\"api\", error=\"invalid_token\", error_description=\"token expired\"")
    );
}

#[tokio::test]
async fn lowercase_bearer_scheme_is_accepted() {
    let server = rsa_server().await;
    let t = token(rsa_key()).sign();
    for scheme in ["bearer", "BEARER", "BeArEr"] {
        server
            .get("/", &[("authorization", &format!("{scheme} {t}"))])
            .await
            .assert_ok();
    }
}

#[tokio::test]
async fn two_authorization_headers_are_an_invalid_request() {
    let server = rsa_server().await;
    let t = token(rsa_key()).sign();
    let bearer = format!("Bearer {t}");
    server
        .get(
            "/",
            &[("authorization", &bearer), ("authorization", &bearer)],
        )
        .await
        .assert_invalid_request();
}

#[tokio::test]
async fn bearer_with_nothing_after_is_an_invalid_request() {
    let server = rsa_server().await;
    for value in ["Bearer", "Bearer ", "Bearer    "] {
        server
            .get("/", &[("authorization", value)])
            .await
            .assert_invalid_request();
    }
}

#[tokio::test]
async fn bearer_with_trailing_junk_is_an_invalid_request() {
    let server = rsa_server().await;
    let t = token(rsa_key()).sign();
    for value in [
        format!("Bearer {t} extra"),
        format!("Bearer {t},x"),
        format!("Bearer \"{t}\""),
    ] {
        server
            .get("/", &[("authorization", &value)])
            .await
            .assert_invalid_request();
    }
}

/// Characters outside `b64token` decide the refusal over the checks that read an
/// `Authorization` token before its characters are: the length limit, and the issuer
/// picked by the unverified `iss`; a well-formed token still gets those refusals.
#[tokio::test]
async fn bad_characters_outrank_the_length_limit_and_the_issuer_peek() {
    let short = builder(rsa_key().key_set())
        .max_token_len(64)
        .build()
        .expect("config");
    let server = Server::start(JwtAuthLayer::new(short)).await;
    let long = "a".repeat(100);
    server
        .bearer(&long)
        .await
        .assert_invalid_token("token too long");
    server
        .get("/", &[("authorization", &format!("Bearer {long},"))])
        .await
        .assert_invalid_request();

    let two = JwtAuthConfig::builder()
        .issuer(TrustedIssuer::new(ISSUER).key_set(rsa_key().key_set()))
        .issuer(TrustedIssuer::new("https://second.example.com").key_set(rsa_key_2().key_set()))
        .audience(AUDIENCE)
        .build()
        .expect("config");
    let server = Server::start(JwtAuthLayer::new(two)).await;
    let stranger = token(rsa_key())
        .issuer("https://stranger.example.com")
        .sign();
    server
        .bearer(&stranger)
        .await
        .assert_invalid_token("issuer not trusted");
    server
        .get("/", &[("authorization", &format!("Bearer {stranger} ,"))])
        .await
        .assert_invalid_request();
    server
        .get("/", &[("authorization", "Bearer e30,.e30.x")])
        .await
        .assert_invalid_request();
    // Bytes that are not UTF-8, where the peek must read the token as text.
    server
        .bearer_bytes(&[stranger.as_bytes(), &[0xE9]].concat())
        .await
        .assert_invalid_request();
}

#[tokio::test]
async fn the_length_limit_admits_its_own_length_and_bad_bytes_past_it_are_malformed() {
    let valid = token(rsa_key()).sign();
    for cache in [false, true] {
        let mut cfg = builder(rsa_key().key_set()).max_token_len(valid.len());
        if cache {
            cfg = cfg.cache(tower_jwt_auth::cache::CacheOptions::new());
        }
        let server = Server::start(JwtAuthLayer::new(cfg.build().expect("config"))).await;
        // Exactly at the limit, twice: verified, then (with the cache) a hit.
        server.bearer(&valid).await.assert_ok();
        server.bearer(&valid).await.assert_ok();
        server
            .bearer(&format!("{valid}A"))
            .await
            .assert_invalid_token("token too long");
        // Bytes that are not UTF-8 (obs-text), within the limit and past it: the
        // character check's 400 in both places, never "too long" or a signature error.
        let mut changed = valid.clone().into_bytes();
        changed[valid.len() - 2] = 0xC3;
        for raw in [changed.clone(), [changed, vec![0xA9]].concat()] {
            server.bearer_bytes(&raw).await.assert_invalid_request();
        }
    }
}

#[tokio::test]
async fn basic_scheme_gets_a_challenge_without_error_code() {
    let server = rsa_server().await;
    server
        .get("/", &[("authorization", "Basic dXNlcjpwYXNz")])
        .await
        .assert_no_token();
}

#[tokio::test]
async fn token_in_the_query_string_is_ignored() {
    let server = rsa_server().await;
    let t = token(rsa_key()).sign();
    server
        .get(&format!("/?access_token={t}"), &[])
        .await
        .assert_no_token();
}

#[tokio::test]
async fn cookie_and_custom_header_sources() {
    let cfg = builder(rsa_key().key_set())
        .token_source(TokenSource::bearer().or(TokenSource::cookie("at")))
        .build()
        .expect("config");
    let server = Server::start(JwtAuthLayer::new(cfg)).await;
    let t = token(rsa_key()).sign();
    server
        .get("/", &[("cookie", &format!("theme=dark; at={t}"))])
        .await
        .assert_ok();
    // Another cookie with UTF-8 in it (browsers send that) hides nothing.
    server
        .get("/", &[("cookie", &format!("name=José; at={t}"))])
        .await
        .assert_ok();
    server
        .get("/", &[("cookie", "name=José; at=not a token")])
        .await
        .assert_invalid_request();
    // Only space and tab are whitespace between cookies (RFC 6265): a no-break space
    // makes another name.
    server
        .get("/", &[("cookie", &format!("name=José;\u{a0}at={t}"))])
        .await
        .assert_no_token();
    // The same token in two places is ambiguous: 400.
    server
        .get(
            "/",
            &[
                ("cookie", &format!("at={t}")),
                ("authorization", &format!("Bearer {t}")),
            ],
        )
        .await
        .assert_invalid_request();
    // The cookie twice, even with the same value, is refused like two Authorization
    // headers; so is a value outside the b64token grammar.
    let other = token(rsa_key()).subject("mallory").sign();
    for cookies in [
        format!("at={t}; at={other}"),
        format!("at={t}; at={t}"),
        format!("at={t},junk"),
    ] {
        server
            .get("/", &[("cookie", &cookies)])
            .await
            .assert_invalid_request();
    }

    let cfg = builder(rsa_key().key_set())
        .token_source(TokenSource::header("x-access-token"))
        .build()
        .expect("config");
    let server = Server::start(JwtAuthLayer::new(cfg)).await;
    server.get("/", &[("x-access-token", &t)]).await.assert_ok();
    server.bearer(&t).await.assert_no_token();
}

#[tokio::test]
async fn custom_token_source_closure() {
    let source = TokenSource::custom(|headers, _uri| {
        headers
            .get("x-api-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    });
    let cfg = builder(rsa_key().key_set())
        .token_source(source)
        .build()
        .expect("config");
    let server = Server::start(JwtAuthLayer::new(cfg)).await;
    let t = token(rsa_key()).sign();
    server.get("/", &[("x-api-token", &t)]).await.assert_ok();
    server.get("/", &[]).await.assert_no_token();
}

// ---- length and structure --------------------------------------------------------

// ---- algorithms and alg pinning -------------------------------

#[tokio::test]
async fn algorithm_outside_the_allow_list_is_refused() {
    let cfg = builder(rsa_key().key_set())
        .algorithms([Algorithm::RS256])
        .build()
        .expect("config");
    let server = Server::start(JwtAuthLayer::new(cfg)).await;
    server.bearer(&token(rsa_key()).sign()).await.assert_ok();
    server
        .bearer(&token(rsa_key()).alg(Algorithm::PS256).sign())
        .await
        .assert_invalid_token("algorithm not allowed");
}

#[tokio::test]
async fn key_without_alg_accepts_only_algorithms_of_its_type() {
    let mut jwk = rsa_key().public_jwk();
    jwk.as_object_mut().expect("object").remove("alg");
    let keys = KeySet::from_jwks_value(&json!({ "keys": [jwk] })).expect("jwks");
    let server = server_with(keys.clone()).await;
    server
        .bearer(&token(rsa_key()).alg(Algorithm::PS512).sign())
        .await
        .assert_ok();
    // With an EC key beside it, ES256 is allowed, so key selection runs: an ES256 token
    // naming the RSA key's kid finds a key of the wrong type.
    let with_ec = keys.merge(ec_key().key_set());
    let server = server_with(with_ec).await;
    let lying = token(ec_key()).kid(rsa_key().kid()).sign();
    server
        .bearer(&lying)
        .await
        .assert_invalid_token("key does not match algorithm");
    server.bearer(&token(ec_key()).sign()).await.assert_ok();
}

// ---- key selection and untrusted key headers --------------------------------------

#[tokio::test]
async fn no_kid_is_accepted_only_with_exactly_one_compatible_key() {
    let server = rsa_server().await;
    server
        .bearer(&token(rsa_key()).no_kid().sign())
        .await
        .assert_ok();
    let keys = KeySet::from_jwks_value(&jwks([rsa_key(), rsa_key_2()])).expect("jwks");
    let server = server_with(keys).await;
    server
        .bearer(&token(rsa_key()).no_kid().sign())
        .await
        .assert_invalid_token("no matching signing key");
    server.bearer(&token(rsa_key_2()).sign()).await.assert_ok();
}

#[tokio::test]
async fn unknown_kid_is_refused() {
    let keys = KeySet::from_jwks_value(&jwks([rsa_key(), rsa_key_2()])).expect("jwks");
    let server = server_with(keys).await;
    server
        .bearer(&token(rsa_key()).unknown_kid().sign())
        .await
        .assert_invalid_token("unknown signing key");
}

#[tokio::test]
async fn keys_not_for_signatures_are_ignored() {
    let mut enc = rsa_key().public_jwk();
    enc["use"] = json!("enc");
    let mut ops = rsa_key_2().public_jwk();
    ops["key_ops"] = json!(["encrypt", "wrapKey"]);
    let keys = KeySet::from_jwks_value(&json!({ "keys": [enc, ops, ec_key().public_jwk()] }))
        .expect("jwks");
    assert_eq!(keys.len(), 1);
    let server = server_with(keys).await;
    server
        .bearer(&token(rsa_key()).sign())
        .await
        .assert_invalid_token("algorithm not allowed");
}

#[tokio::test]
async fn rsa_modulus_with_a_leading_zero_octet_verifies() {
    let mut jwk = rsa_key().public_jwk();
    let n = URL_SAFE_NO_PAD
        .decode(jwk["n"].as_str().expect("n"))
        .expect("b64");
    let mut padded = vec![0u8];
    padded.extend(n);
    jwk["n"] = json!(URL_SAFE_NO_PAD.encode(padded));
    let keys = KeySet::from_jwks_value(&json!({ "keys": [jwk] })).expect("jwks");
    assert_eq!(keys.len(), 1);
    server_with(keys)
        .await
        .bearer(&token(rsa_key()).sign())
        .await
        .assert_ok();
}

// ---- header rules: crit, typ ------------------------------------------------------

#[tokio::test]
async fn access_token_policy_requires_at_jwt() {
    let cfg = builder(rsa_key().key_set())
        .typ_policy(TypPolicy::AccessToken)
        .build()
        .expect("config");
    let server = Server::start(JwtAuthLayer::new(cfg)).await;
    server
        .bearer(&token(rsa_key()).typ("at+jwt").sign())
        .await
        .assert_ok();
    for t in [
        token(rsa_key()).typ("JWT").sign(),
        token(rsa_key()).no_typ().sign(),
    ] {
        server
            .bearer(&t)
            .await
            .assert_invalid_token("unexpected token type");
    }
}

// ---- claims: iss, aud, exp, nbf, iat, required ------------------------------------

#[tokio::test]
async fn issuer_must_match_exactly() {
    let server = rsa_server().await;
    server
        .bearer(&token(rsa_key()).wrong_issuer().sign())
        .await
        .assert_invalid_token("issuer not trusted");
    // No trailing-slash normalisation: ISSUER ends with '/', this one does not.
    let trimmed = ISSUER.trim_end_matches('/');
    server
        .bearer(&token(rsa_key()).issuer(trimmed).sign())
        .await
        .assert_invalid_token("issuer not trusted");
    server
        .bearer(&token(rsa_key()).without_claim("iss").sign())
        .await
        .assert_invalid_token("required claim missing");
}

#[tokio::test]
async fn each_issuer_verifies_only_with_its_own_keys() {
    const SECOND: &str = "https://second.example.com";
    let cfg = JwtAuthConfig::builder()
        .issuer(TrustedIssuer::new(ISSUER).key_set(rsa_key().key_set()))
        .issuer(TrustedIssuer::new(SECOND).key_set(rsa_key_2().key_set()))
        .audience(AUDIENCE)
        .build()
        .expect("config");
    let server = Server::start(JwtAuthLayer::new(cfg)).await;
    server.bearer(&token(rsa_key()).sign()).await.assert_ok();
    server
        .bearer(&token(rsa_key_2()).issuer(SECOND).sign())
        .await
        .assert_ok();
    // One issuer's key signing a token that claims the other (RFC 8725 section 3.8).
    server
        .bearer(&token(rsa_key()).issuer(SECOND).sign())
        .await
        .assert_invalid_token("unknown signing key");
    server
        .bearer(&token(rsa_key_2()).sign())
        .await
        .assert_invalid_token("unknown signing key");
}

#[tokio::test]
async fn audiences_are_per_issuer_with_the_builders_as_fallback() {
    const SECOND: &str = "https://second.example.com";
    const SECOND_API: &str = "https://api.example.com/second-only";
    let cfg = JwtAuthConfig::builder()
        .issuer(TrustedIssuer::new(ISSUER).key_set(rsa_key().key_set()))
        .issuer(
            TrustedIssuer::new(SECOND)
                .key_set(ec_key().key_set())
                .audience(SECOND_API),
        )
        .audience(AUDIENCE)
        .build()
        .expect("config");
    let server = Server::start(JwtAuthLayer::new(cfg)).await;
    let second = || token(ec_key()).issuer(SECOND);
    server
        .bearer(&second().audience(SECOND_API).sign())
        .await
        .assert_ok();
    // The builder's audience is not the second issuer's.
    server
        .bearer(&second().sign())
        .await
        .assert_invalid_token("audience not accepted");
    // And the second issuer's audience is not the first's.
    server
        .bearer(&token(rsa_key()).audience(SECOND_API).sign())
        .await
        .assert_invalid_token("audience not accepted");
}

#[test]
fn several_issuers_cannot_share_an_anonymous_key_source() {
    let shared = [
        builder(rsa_key().key_set()),
        JwtAuthConfig::builder()
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .jwks_url("https://idp.example.com/keys"),
    ];
    for config in shared {
        let err = config
            .issuer("https://second.example.com")
            .build()
            .expect_err("shared keys");
        assert_eq!(err.kind(), ConfigErrorKind::SharedKeySource);
        assert!(
            err.to_string().contains(".issuer(TrustedIssuer::new"),
            "{err}"
        );
    }
    // One issuer with its own keys and one using the builder's is fine.
    builder(rsa_key().key_set())
        .issuer(TrustedIssuer::new("https://second.example.com").key_set(ec_key().key_set()))
        .build()
        .expect("each has its own keys");
    // Discovery binds keys to each issuer by itself.
    JwtAuthConfig::builder()
        .issuer("https://a.example.com/")
        .issuer("https://b.example.com/")
        .audience(AUDIENCE)
        .build()
        .expect("discovery per issuer");
}

#[tokio::test]
async fn audience_string_or_array_must_name_ours() {
    let server = rsa_server().await;
    server
        .bearer(
            &token(rsa_key())
                .audiences(["https://other", AUDIENCE])
                .sign(),
        )
        .await
        .assert_ok();
    server
        .bearer(
            &token(rsa_key())
                .audiences(["https://other", "https://third"])
                .sign(),
        )
        .await
        .assert_invalid_token("audience not accepted");
    server
        .bearer(&token(rsa_key()).wrong_audience().sign())
        .await
        .assert_invalid_token("audience not accepted");
    server
        .bearer(&token(rsa_key()).without_claim("aud").sign())
        .await
        .assert_invalid_token("required claim missing");
    server
        .bearer(&token(rsa_key()).claim("aud", 5).sign())
        .await
        .assert_invalid_token("invalid claim");
}

#[tokio::test]
async fn build_without_audience_fails_unless_dangerously_opted_out() {
    let err = JwtAuthConfig::builder()
        .issuer(ISSUER)
        .key_set(rsa_key().key_set())
        .build()
        .expect_err("no audience");
    assert_eq!(err.kind(), ConfigErrorKind::NoAudience);

    let cfg = JwtAuthConfig::builder()
        .issuer(ISSUER)
        .key_set(rsa_key().key_set())
        .dangerous()
        .accept_any_audience()
        .build()
        .expect("opted out");
    let server = Server::start(JwtAuthLayer::new(cfg)).await;
    server
        .bearer(&TokenBuilder::new(rsa_key()).issuer(ISSUER).sign())
        .await
        .assert_ok();
}

#[tokio::test]
async fn non_integer_exp_is_accepted() {
    let server = rsa_server().await;
    server
        .bearer(&token(rsa_key()).claim("exp", 4_000_000_000.5).sign())
        .await
        .assert_ok();
}

#[tokio::test]
async fn clock_skew_inside_the_leeway_passes_and_outside_fails() {
    let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
    let cfg = builder(rsa_key().key_set())
        .clock(clock.clone())
        .leeway(Duration::from_secs(60))
        .build()
        .expect("config");
    let server = Server::start(JwtAuthLayer::new(cfg)).await;
    let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let t = token(rsa_key()).now(start).expires_in_secs(100).sign();

    clock.advance(Duration::from_secs(159)); // 59 s after exp: inside the leeway
    server.bearer(&t).await.assert_ok();
    clock.advance(Duration::from_secs(1)); // exactly exp + leeway: expired
    server
        .bearer(&t)
        .await
        .assert_invalid_token("token expired");

    // nbf and iat in the future: inside the leeway they pass, beyond it they fail.
    clock.set(start);
    let early = token(rsa_key()).now(start).not_before_in_secs(30).sign();
    server.bearer(&early).await.assert_ok();
    let too_early = token(rsa_key()).now(start).not_before_in_secs(61).sign();
    server
        .bearer(&too_early)
        .await
        .assert_invalid_token("token not yet valid");
    let future_iat = token(rsa_key()).now(start).issued_at_in_secs(120).sign();
    server
        .bearer(&future_iat)
        .await
        .assert_invalid_token("token issued in the future");
    server
        .bearer(&token(rsa_key()).now(start).not_yet_valid().sign())
        .await
        .assert_invalid_token("token not yet valid");
}

#[tokio::test]
async fn required_custom_claims_must_be_present() {
    let cfg = builder(rsa_key().key_set())
        .require_claims_present(["jti", "tenant"])
        .build()
        .expect("config");
    let server = Server::start(JwtAuthLayer::new(cfg)).await;
    server
        .bearer(&token(rsa_key()).claim("tenant", "acme").sign())
        .await
        .assert_ok();
    server
        .bearer(&token(rsa_key()).sign())
        .await
        .assert_invalid_token("required claim missing");
}

// ---- modes and rendering ----------------------------------------------------------

#[tokio::test]
async fn optional_mode_lets_anonymous_requests_through_but_not_bad_tokens() {
    let cfg = builder(rsa_key().key_set()).build().expect("config");
    let server = Server::start(JwtAuthLayer::new(cfg).optional()).await;
    let answer = server.get("/optional", &[]).await;
    answer.assert_ok();
    assert_eq!(answer.body, "anonymous");
    let answer = server
        .get(
            "/optional",
            &[(
                "authorization",
                &format!("Bearer {}", token(rsa_key()).sign()),
            )],
        )
        .await;
    assert_eq!(answer.body, "test-user");
    let bad = token(rsa_key()).expired().sign();
    server
        .get("/optional", &[("authorization", &format!("Bearer {bad}"))])
        .await
        .assert_invalid_token("token expired");
    // A handler that requires claims still refuses the anonymous request, with 401.
    server.get("/", &[]).await.assert_no_token();
}

#[tokio::test]
async fn json_responder_renders_a_body_with_the_same_challenge() {
    let cfg = builder(rsa_key().key_set())
        .error_responder(JsonResponder)
        .build()
        .expect("config");
    let server = Server::start(JwtAuthLayer::new(cfg)).await;
    let answer = server.bearer(&token(rsa_key()).expired().sign()).await;
    answer.assert_invalid_token("token expired");
    assert_eq!(answer.content_type.as_deref(), Some("application/json"));
    let body: serde_json::Value = serde_json::from_str(&answer.body).expect("json");
    assert_eq!(
        body,
        json!({"error": "invalid_token", "error_description": "token expired"})
    );
}

#[tokio::test]
async fn http1_with_a_grpc_content_type_gets_the_configured_http_answer() {
    let cfg = builder(rsa_key().key_set())
        .error_responder(JsonResponder)
        .build()
        .expect("config");
    let server = Server::start(JwtAuthLayer::new(cfg)).await;
    let answer = server
        .get("/", &[("content-type", "application/grpc")])
        .await;
    answer.assert_no_token();
    assert_eq!(answer.cache_control.as_deref(), Some("no-store"));
    assert_eq!(answer.content_type.as_deref(), Some("application/json"));
    let body: serde_json::Value = serde_json::from_str(&answer.body).expect("json");
    assert_eq!(body["error"], "unauthorized");
}

#[tokio::test]
async fn custom_claims_type_reaches_the_handler() {
    #[derive(Clone, serde::Deserialize)]
    struct Mine {
        sub: String,
        org: String,
    }
    async fn handler(tower_jwt_auth::Claims(c): tower_jwt_auth::Claims<Mine>) -> String {
        format!("{}@{}", c.sub, c.org)
    }
    let cfg = builder(rsa_key().key_set()).build().expect("config");
    let router = axum::Router::new()
        .route("/", axum::routing::get(handler))
        .layer(JwtAuthLayer::with_claims::<Mine>(cfg));
    let server = Server::start_router(router).await;
    let answer = server
        .bearer(&token(rsa_key()).claim("org", "acme").sign())
        .await;
    answer.assert_ok();
    assert_eq!(answer.body, "test-user@acme");
    // A payload that does not fit the claims type is an invalid token, not a 500.
    server
        .bearer(&token(rsa_key()).sign())
        .await
        .assert_invalid_token("invalid claim");
}

#[tokio::test]
async fn claims_extractor_without_a_layer_is_a_500_naming_the_layer() {
    async fn handler(
        tower_jwt_auth::Claims(c): tower_jwt_auth::Claims<tower_jwt_auth::StandardClaims>,
    ) -> String {
        c.sub.unwrap_or_default()
    }
    let router = axum::Router::new().route("/", axum::routing::get(handler));
    let server = Server::start_router(router).await;
    let answer = server.get("/", &[]).await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(answer.body.contains("JwtAuthLayer"), "{answer:?}");
}

// ---- configuration errors ---------------------------------------------------------

#[test]
fn build_reports_each_configuration_mistake() {
    let kind = |b: JwtAuthConfigBuilder| b.build().expect_err("must fail").kind();
    let base = || JwtAuthConfig::builder().issuer(ISSUER).audience(AUDIENCE);
    assert_eq!(
        kind(
            JwtAuthConfig::builder()
                .audience(AUDIENCE)
                .hmac_secret(vec![1; 32])
        ),
        ConfigErrorKind::NoIssuer
    );
    assert_eq!(
        kind(
            base()
                .hmac_secret(vec![1; 32])
                .jwks_url("https://idp.example.com/keys")
        ),
        ConfigErrorKind::ConflictingKeySources
    );
    assert_eq!(
        kind(base().jwks_url("http://idp.example.com/keys")),
        ConfigErrorKind::InvalidUrl
    );
    assert_eq!(
        kind(
            JwtAuthConfig::builder()
                .issuer("http://idp.example.com")
                .audience(AUDIENCE)
        ),
        ConfigErrorKind::InvalidUrl
    );
    assert_eq!(
        kind(base().issuer("https://login.example.com/{tenantid}/v2.0")),
        ConfigErrorKind::NoTenantAllowList
    );
    assert_eq!(
        kind(base().audience("").hmac_secret(vec![1; 32])),
        ConfigErrorKind::EmptyValue
    );
    assert_eq!(
        kind(base().hmac_secret(vec![1; 31])),
        ConfigErrorKind::HmacSecretTooShort
    );
    assert_eq!(
        kind(
            base()
                .hmac_secret(vec![1; 32])
                .algorithms([Algorithm::HS512])
        ),
        ConfigErrorKind::HmacSecretTooShort
    );
    assert_eq!(
        kind(base().hmac_secret(vec![1; 32]).key_set(rsa_key().key_set())),
        ConfigErrorKind::MixedKeyTypes
    );
    assert_eq!(
        kind(
            base()
                .key_set(rsa_key().key_set())
                .algorithms([Algorithm::ES256])
        ),
        ConfigErrorKind::AlgorithmNotSupported
    );
    assert_eq!(kind(base().pem("not a pem")), ConfigErrorKind::InvalidKey);
    assert_eq!(
        kind(base().hmac_secret(vec![1; 32]).realm("bad\nrealm")),
        ConfigErrorKind::InvalidHeader
    );
    assert_eq!(
        kind(
            base()
                .hmac_secret(vec![1; 32])
                .token_source(TokenSource::header("bad header"))
        ),
        ConfigErrorKind::InvalidHeader
    );
    assert_eq!(
        kind(base().hmac_secret(vec![1; 32]).max_token_len(0)),
        ConfigErrorKind::InvalidValue
    );
}

#[test]
fn debug_output_never_shows_secrets() {
    let secret = b"a-very-secret-hmac-key-0123456789abcdef".to_vec();
    let builder = JwtAuthConfig::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .hmac_secret(secret.clone());
    assert!(!format!("{builder:?}").contains("very-secret"));
    let cfg = builder.build().expect("config");
    let text = format!("{cfg:?}");
    assert!(!text.contains("very-secret"), "{text}");
    assert!(!text.contains(&STANDARD.encode(&secret)));
    let key = TestKey::hmac_secret(secret);
    assert!(!format!("{key:?}").contains("very-secret"));
}

#[test]
fn encode_json_matches_what_tokens_carry() {
    let t = TokenBuilder::new(rsa_key()).no_kid().no_typ().sign();
    let header = t.split('.').next().expect("header");
    assert_eq!(header, encode_json(&json!({"alg": "RS256"})));
}
