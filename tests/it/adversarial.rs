//! Attacks on a JWT resource server, one named test each, through the real layer over
//! real HTTP: every known JWT attack (RFC 8725 and the CVEs behind it) and every rejection
//! rule the layer enforces. Each asserts the status and the `WWW-Authenticate` code; no
//! request may ever get a 5xx.

use crate::support::{
    AUDIENCE, ISSUER, Server, builder, ec_key, rsa_key, rsa_key_2, rsa_server, server_with,
    sign_raw, token, with_signature,
};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use http::StatusCode;
use serde_json::json;
use tower_jwt_auth::jwks::KeySet;
use tower_jwt_auth::testing::{Endpoint, MockIssuer, TestKey, jwks};
use tower_jwt_auth::{Algorithm, ConfigErrorKind, JwtAuthLayer};

#[tokio::test]
async fn alg_none_is_refused_in_every_casing() {
    let server = rsa_server().await;
    for casing in ["none", "None", "NONE", "nOnE"] {
        let t = token(rsa_key()).alg_none().sign().replace(
            &URL_SAFE_NO_PAD.encode(json!({"alg":"none","kid":"rsa-1","typ":"JWT"}).to_string()),
            &URL_SAFE_NO_PAD.encode(json!({"alg":casing,"kid":"rsa-1","typ":"JWT"}).to_string()),
        );
        assert!(t.ends_with('.'));
        server
            .bearer(&t)
            .await
            .assert_invalid_token("unsupported algorithm");
        // With a signature copied from a valid token, too.
        let valid = token(rsa_key()).sign();
        let sig = valid.rsplit('.').next().expect("signature");
        let forged = format!("{t}{sig}");
        server
            .bearer(&forged)
            .await
            .assert_invalid_token("unsupported algorithm");
    }
}

#[tokio::test]
async fn hs256_signed_with_the_rsa_public_key_is_refused() {
    // Algorithm confusion (CVE-2015-9235): the public PEM used as an HMAC secret.
    let server = rsa_server().await;
    let pem = rsa_key().public_pem().expect("pem");
    let confused = TestKey::hmac_secret(pem.into_bytes()).with_kid(rsa_key().kid());
    let t = token(&confused).sign();
    server
        .bearer(&t)
        .await
        .assert_invalid_token("algorithm not allowed");
    let jwk_bytes = rsa_key().public_jwk().to_string().into_bytes();
    let confused = TestKey::hmac_secret(jwk_bytes).with_kid(rsa_key().kid());
    let t = token(&confused).sign();
    server
        .bearer(&t)
        .await
        .assert_invalid_token("algorithm not allowed");
}

#[tokio::test]
async fn hs256_signed_with_an_empty_secret_is_refused() {
    let server = rsa_server().await;
    let empty = TestKey::hmac_secret(Vec::new()).with_kid(rsa_key().kid());
    server
        .bearer(&token(&empty).sign())
        .await
        .assert_invalid_token("algorithm not allowed");
    // And on an HMAC-configured server, an empty-secret token fails the signature.
    let hmac = TestKey::hmac();
    let server = server_with(hmac.key_set()).await;
    let empty = TestKey::hmac_secret(Vec::new()).with_kid(hmac.kid());
    server
        .bearer(&token(&empty).sign())
        .await
        .assert_invalid_token("invalid signature");
}

#[tokio::test]
async fn rs256_token_naming_an_ec_kid_is_refused() {
    let keys = KeySet::from_jwks_value(&jwks([rsa_key(), ec_key()])).expect("jwks");
    let server = server_with(keys).await;
    let t = token(rsa_key()).kid(ec_key().kid()).sign();
    server
        .bearer(&t)
        .await
        .assert_invalid_token("key does not match algorithm");
}

#[tokio::test]
async fn key_pinned_to_rs384_refuses_rs256() {
    let mut pinned = rsa_key_2().public_jwk();
    pinned["alg"] = json!("RS384");
    let document = json!({ "keys": [rsa_key().public_jwk(), pinned] });
    let server = server_with(KeySet::from_jwks_value(&document).expect("jwks")).await;
    server
        .bearer(&token(rsa_key_2()).sign())
        .await
        .assert_invalid_token("key does not match algorithm");
    server
        .bearer(&token(rsa_key_2()).alg(Algorithm::RS384).sign())
        .await
        .assert_ok();
    // The RS256 key does not verify RS384 either.
    server
        .bearer(&token(rsa_key()).alg(Algorithm::RS384).sign())
        .await
        .assert_invalid_token("key does not match algorithm");
}

#[tokio::test]
async fn es256_all_zero_signature_is_refused() {
    // CVE-2022-21449 ("psychic signatures"): r = s = 0.
    let server = server_with(ec_key().key_set()).await;
    let t = with_signature(&token(ec_key()).sign(), &[0u8; 64]);
    server
        .bearer(&t)
        .await
        .assert_invalid_token("invalid signature");
}

#[tokio::test]
async fn es256_der_encoded_signature_is_refused() {
    let server = server_with(ec_key().key_set()).await;
    let t = token(ec_key()).sign();
    let fixed = URL_SAFE_NO_PAD
        .decode(t.rsplit('.').next().expect("sig"))
        .expect("b64");
    let der = with_signature(&t, &der_signature(&fixed));
    server
        .bearer(&der)
        .await
        .assert_invalid_token("invalid signature");
}

#[tokio::test]
async fn signature_of_wrong_length_is_refused() {
    let server = rsa_server().await;
    let t = token(rsa_key()).sign();
    for len in [0usize, 1, 255, 257, 512] {
        server
            .bearer(&with_signature(&t, &vec![1u8; len]))
            .await
            .assert_invalid_token("invalid signature");
    }
}

#[tokio::test]
async fn embedded_jwk_header_is_not_trusted() {
    // CVE-2018-0114: the attacker embeds its own public key and signs with it.
    let server = rsa_server().await;
    let attacker = rsa_key().foreign();
    let t = token(rsa_key())
        .signed_by_foreign_key()
        .header("jwk", attacker.public_jwk())
        .sign();
    server
        .bearer(&t)
        .await
        .assert_invalid_token("invalid signature");
    let t = token(&attacker.clone().with_kid("attacker"))
        .header("jwk", attacker.public_jwk())
        .sign();
    server
        .bearer(&t)
        .await
        .assert_invalid_token("unknown signing key");
}

#[tokio::test]
async fn jku_and_x5u_headers_are_never_fetched() {
    let server = rsa_server().await;
    let attacker = TestKey::ec_p256().with_kid("attacker");
    // The attacker's key, really served over HTTP: a fetch would be counted.
    let attacker_idp = MockIssuer::builder().key(attacker.clone()).start().await;
    let url = attacker_idp.jwks_url();
    for member in ["jku", "x5u"] {
        let t = token(&attacker).header(member, url.as_str()).sign();
        let answer = server.bearer(&t).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{answer:?}");
        // A legitimate token that merely carries the member is judged on its own key.
        let ok = token(rsa_key()).header(member, url.as_str()).sign();
        server.bearer(&ok).await.assert_ok();
    }
    assert_eq!(attacker_idp.requests(Endpoint::Jwks), 0, "never fetched");
    let t = token(rsa_key())
        .signed_by_foreign_key()
        .header(
            "x5c",
            json!(["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"]),
        )
        .sign();
    server
        .bearer(&t)
        .await
        .assert_invalid_token("invalid signature");
}

#[tokio::test]
async fn foreign_key_and_tampered_payload_fail_the_signature() {
    let server = rsa_server().await;
    server
        .bearer(&token(rsa_key()).signed_by_foreign_key().sign())
        .await
        .assert_invalid_token("invalid signature");
    server
        .bearer(&token(rsa_key()).tampered().sign())
        .await
        .assert_invalid_token("invalid signature");
}

#[tokio::test]
async fn oct_key_in_a_jwks_never_verifies_hs256() {
    let secret = TestKey::hmac().with_kid("shared");
    let document = jwks([rsa_key(), &secret]);
    let keys = KeySet::from_jwks_value(&document).expect("jwks");
    assert_eq!(keys.len(), 1, "the oct key is skipped");
    let server = server_with(keys).await;
    server
        .bearer(&token(&secret).sign())
        .await
        .assert_invalid_token("algorithm not allowed");
    // Even when HS256 is explicitly asked for, the published secret is not a key.
    let err = builder(KeySet::from_jwks_value(&document).expect("jwks"))
        .algorithms([Algorithm::HS256])
        .build()
        .expect_err("no HMAC key");
    assert_eq!(err.kind(), ConfigErrorKind::AlgorithmNotSupported);
}

#[tokio::test]
async fn crit_header_is_refused() {
    let server = rsa_server().await;
    for crit in [json!(["exp"]), json!([]), json!(null)] {
        let t = token(rsa_key()).header("crit", crit).sign();
        server
            .bearer(&t)
            .await
            .assert_invalid_token("unsupported critical header");
    }
}

#[tokio::test]
async fn typ_for_other_token_kinds_is_refused() {
    let server = rsa_server().await;
    for typ in ["dpop+jwt", "logout+jwt", "secevent+jwt", "JWE"] {
        server
            .bearer(&token(rsa_key()).typ(typ).sign())
            .await
            .assert_invalid_token("unexpected token type");
    }
    for typ in ["JWT", "jwt", "at+jwt", "application/at+jwt"] {
        server
            .bearer(&token(rsa_key()).typ(typ).sign())
            .await
            .assert_ok();
    }
    server
        .bearer(&token(rsa_key()).no_typ().sign())
        .await
        .assert_ok();
}

#[tokio::test]
async fn sixty_kilobyte_token_is_refused_as_too_long() {
    let server = rsa_server().await;
    let huge = token(rsa_key()).claim("pad", "x".repeat(60 * 1024)).sign();
    server
        .bearer(&huge)
        .await
        .assert_invalid_token("token too long");
}

#[tokio::test]
async fn the_length_limit_comes_before_the_issuer_is_read() {
    // Several issuers: the token's iss picks one, but an oversized token is refused
    // before its payload is decoded to find it, through the layer and the Verifier.
    let cfg = crate::support::builder(rsa_key().key_set())
        .issuer(
            tower_jwt_auth::TrustedIssuer::new("https://second.example.com")
                .key_set(crate::support::ec_key().key_set()),
        )
        .build()
        .expect("config");
    let huge = format!("e30.{}.c2ln", "!".repeat(9 * 1024));
    let verifier = tower_jwt_auth::Verifier::new(cfg.clone());
    let err = verifier
        .verify::<tower_jwt_auth::StandardClaims>(&huge)
        .expect_err("too long");
    assert_eq!(err.kind(), tower_jwt_auth::ErrorKind::TokenTooLong);
    let err = verifier
        .verify_async::<tower_jwt_auth::StandardClaims>(&huge)
        .await
        .expect_err("too long");
    assert_eq!(err.kind(), tower_jwt_auth::ErrorKind::TokenTooLong);
    let server = crate::support::Server::start(JwtAuthLayer::new(cfg)).await;
    let huge = format!("e30.{}.c2ln", "A".repeat(9 * 1024));
    server
        .bearer(&huge)
        .await
        .assert_invalid_token("token too long");
}

#[tokio::test]
async fn wrong_segment_counts_are_malformed() {
    let server = rsa_server().await;
    let t = token(rsa_key()).sign();
    let parts: Vec<&str> = t.split('.').collect();
    let two = format!("{}.{}", parts[0], parts[1]);
    let four = format!("{t}.{}", parts[2]);
    let five = format!("{t}.{}.{}", parts[1], parts[2]);
    for bad in [two, four, five, "abc".to_owned()] {
        server
            .bearer(&bad)
            .await
            .assert_invalid_token("malformed token");
    }
}

#[tokio::test]
async fn standard_base64_alphabet_and_padding_are_malformed() {
    let server = rsa_server().await;
    let header = json!({"alg": "RS256", "kid": rsa_key().kid(), "x": "~~~???>>>"}).to_string();
    // Claims chosen so that the standard alphabet needs '+' or '/' and padding.
    let payload =
        json!({"iss": ISSUER, "aud": AUDIENCE, "exp": 4_000_000_000u64, "d": "~~~???>>>"})
            .to_string();
    for (h, p) in [
        (
            URL_SAFE_NO_PAD.encode(&header),
            STANDARD_NO_PAD.encode(&payload),
        ),
        (
            STANDARD_NO_PAD.encode(&header),
            URL_SAFE_NO_PAD.encode(&payload),
        ),
    ] {
        let input = format!("{h}.{p}");
        let sig = rsa_key().sign(Algorithm::RS256, input.as_bytes());
        let t = format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig));
        assert!(t.contains('+') || t.contains('/'), "{t}");
        server
            .bearer(&t)
            .await
            .assert_invalid_token("malformed token");
    }
    // A padded signature is still a b64token, and fails base64url decoding.
    let t = token(rsa_key()).sign();
    server
        .bearer(&format!("{t}="))
        .await
        .assert_invalid_token("malformed token");
    // '=' inside the credentials is not a b64token at all (RFC 6750 section 2.1).
    let (h, rest) = t.split_once('.').expect("segments");
    server
        .bearer(&format!("{h}=.{rest}"))
        .await
        .assert_invalid_request();
}

#[tokio::test]
async fn json_array_payload_is_malformed() {
    let server = rsa_server().await;
    let header = json!({"alg": "RS256", "kid": rsa_key().kid()}).to_string();
    let payload = json!([ISSUER, AUDIENCE, 4_000_000_000u64]).to_string();
    let t = sign_raw(rsa_key(), Algorithm::RS256, &header, &payload);
    server
        .bearer(&t)
        .await
        .assert_invalid_token("malformed token");
}

#[tokio::test]
async fn deeply_nested_json_payload_is_refused_without_crashing() {
    let header = json!({"alg": "RS256", "kid": rsa_key().kid()}).to_string();
    let payload = format!(
        "{{\"iss\":\"{ISSUER}\",\"aud\":\"{AUDIENCE}\",\"exp\":4000000000,\"x\":{}{}}}",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let t = sign_raw(rsa_key(), Algorithm::RS256, &header, &payload);
    // Default limit: refused before decoding.
    rsa_server()
        .await
        .bearer(&t)
        .await
        .assert_invalid_token("token too long");
    // With room for it, the signed payload is parsed and the nesting limit refuses it.
    let cfg = builder(rsa_key().key_set())
        .max_token_len(64 * 1024)
        .build()
        .expect("config");
    let server = Server::start(JwtAuthLayer::new(cfg)).await;
    server
        .bearer(&t)
        .await
        .assert_invalid_token("malformed token");
}

#[tokio::test]
async fn duplicate_claims_in_the_payload_are_refused() {
    let server = rsa_server().await;
    let header = json!({"alg": "RS256", "kid": rsa_key().kid()}).to_string();
    let payload = format!(r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","exp":4000000000,"exp":1}}"#);
    let t = sign_raw(rsa_key(), Algorithm::RS256, &header, &payload);
    server
        .bearer(&t)
        .await
        .assert_invalid_token("invalid claim");
    let header = r#"{"alg":"RS256","alg":"none"}"#;
    let t = sign_raw(
        rsa_key(),
        Algorithm::RS256,
        header,
        &payload.replace(",\"exp\":1", ""),
    );
    server
        .bearer(&t)
        .await
        .assert_invalid_token("malformed token");
}

#[tokio::test]
async fn exp_is_required_and_must_be_a_number() {
    let server = rsa_server().await;
    server
        .bearer(&token(rsa_key()).without_claim("exp").sign())
        .await
        .assert_invalid_token("required claim missing");
    server
        .bearer(&token(rsa_key()).claim("exp", "4000000000").sign())
        .await
        .assert_invalid_token("invalid claim");
    for bad in [json!(true), json!(null), json!(-5), json!({"n": 1})] {
        server
            .bearer(&token(rsa_key()).claim("exp", bad).sign())
            .await
            .assert_invalid_token("invalid claim");
    }
    server
        .bearer(&token(rsa_key()).expired().sign())
        .await
        .assert_invalid_token("token expired");
}

/// DER-encodes a fixed-size ECDSA signature (r || s).
fn der_signature(fixed: &[u8]) -> Vec<u8> {
    fn integer(bytes: &[u8]) -> Vec<u8> {
        let trimmed: Vec<u8> = bytes.iter().copied().skip_while(|&b| b == 0).collect();
        let mut out = vec![0x02];
        let needs_pad = trimmed.first().is_some_and(|b| b & 0x80 != 0);
        out.push(u8::try_from(trimmed.len() + usize::from(needs_pad)).expect("short"));
        if needs_pad {
            out.push(0);
        }
        out.extend(trimmed);
        out
    }
    let (r, s) = fixed.split_at(fixed.len() / 2);
    let body: Vec<u8> = integer(r).into_iter().chain(integer(s)).collect();
    let mut out = vec![0x30, u8::try_from(body.len()).expect("short")];
    out.extend(body);
    out
}

// ---- attacks not covered above ----------------------------------------------------

#[tokio::test]
async fn kid_injection_is_only_ever_a_lookup_key() {
    // Path traversal, SQL, URLs and huge values in `kid` are compared as strings and
    // found in no key set; they never reach a file system, a database or the network.
    let server = rsa_server().await;
    let huge = "k".repeat(4000);
    for kid in [
        "../../../../dev/null",
        "' OR '1'='1",
        "http://127.0.0.1:9/keys",
        "\u{0}",
        huge.as_str(),
        "",
    ] {
        let t = token(rsa_key()).signed_by_foreign_key().kid(kid).sign();
        server
            .bearer(&t)
            .await
            .assert_invalid_token("unknown signing key");
    }
    // A kid that is not a string is a malformed header.
    let t = token(rsa_key())
        .kid("x")
        .header("kid", json!({"$ne": null}))
        .sign();
    let answer = server.bearer(&t).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{answer:?}");
}

#[tokio::test]
async fn duplicate_header_members_are_refused() {
    let server = rsa_server().await;
    let payload = format!(r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","exp":4000000000}}"#);
    for header in [
        r#"{"alg":"RS256","alg":"none","kid":"rsa-1"}"#,
        r#"{"alg":"RS256","kid":"unknown","kid":"rsa-1"}"#,
    ] {
        let t = sign_raw(rsa_key(), Algorithm::RS256, header, &payload);
        server
            .bearer(&t)
            .await
            .assert_invalid_token("malformed token");
    }
}

#[tokio::test]
async fn numeric_claims_of_the_wrong_type_are_refused() {
    let server = rsa_server().await;
    let cases = [
        ("exp", json!("4000000000")),
        ("exp", json!(true)),
        ("exp", json!(-1)),
        ("exp", json!("NaN")),
        ("exp", json!("Infinity")),
        ("exp", json!([4_000_000_000u64])),
        ("nbf", json!("0")),
        ("iat", json!(false)),
        ("iat", json!(null)),
    ];
    for (claim, value) in cases {
        let t = token(rsa_key()).claim(claim, value.clone()).sign();
        server
            .bearer(&t)
            .await
            .assert_invalid_token("invalid claim");
    }
}

#[tokio::test]
async fn huge_numbers_do_not_overflow_into_acceptance() {
    let server = rsa_server().await;
    let header = json!({"alg": "RS256", "kid": rsa_key().kid()}).to_string();
    // 1e400 does not fit an f64: a parse error, not infinity.
    let payload = format!(r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","exp":1e400}}"#);
    let t = sign_raw(rsa_key(), Algorithm::RS256, &header, &payload);
    let answer = server.bearer(&t).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{answer:?}");
    // A very large but finite exp is a (silly) valid expiry; a huge nbf keeps it out.
    let t = token(rsa_key()).claim("nbf", 1.0e300).sign();
    server
        .bearer(&t)
        .await
        .assert_invalid_token("token not yet valid");
    let t = token(rsa_key()).claim("exp", 1.0e-300).sign();
    server
        .bearer(&t)
        .await
        .assert_invalid_token("token expired");
}

#[tokio::test]
async fn invalid_utf8_in_base64url_parts_is_malformed() {
    let server = rsa_server().await;
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(b"{\"alg\":\"RS256\",\"kid\":\"rsa-1\xff\"}"),
        URL_SAFE_NO_PAD.encode(b"{}")
    );
    let sig = rsa_key().sign(Algorithm::RS256, input.as_bytes());
    let t = format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig));
    server
        .bearer(&t)
        .await
        .assert_invalid_token("malformed token");
    let header = json!({"alg": "RS256", "kid": rsa_key().kid()}).to_string();
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(b"{\"iss\":\"\xc3\x28\"}")
    );
    let sig = rsa_key().sign(Algorithm::RS256, input.as_bytes());
    let t = format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig));
    server
        .bearer(&t)
        .await
        .assert_invalid_token("malformed token");
}

#[tokio::test]
async fn non_canonical_base64_is_malformed() {
    // The last character of a segment whose length is 2 mod 4 carries 4 unused bits; a
    // different character with the same decoded bytes is a second encoding of the same
    // token. Only the canonical one is accepted, so a token has exactly one form.
    let server = rsa_server().await;
    let t = token(rsa_key()).sign();
    let (input, sig) = t.rsplit_once('.').expect("segments");
    assert_eq!(
        sig.len() % 4,
        2,
        "an RS256 signature segment ends with spare bits"
    );
    let last = sig.chars().last().expect("last");
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let index = alphabet.find(last).expect("base64url");
    let twin = alphabet.chars().nth(index ^ 1).expect("twin");
    let forged = format!("{input}.{}{twin}", &sig[..sig.len() - 1]);
    server
        .bearer(&forged)
        .await
        .assert_invalid_token("malformed token");
}

#[tokio::test]
async fn oversized_authorization_header_never_gets_a_5xx() {
    let server = rsa_server().await;
    for len in [9 * 1024, 64 * 1024, 512 * 1024] {
        let value = format!("Bearer {}", "a".repeat(len));
        let response = server
            .client
            .get(server.url("/"))
            .header("authorization", value)
            .send()
            .await;
        // hyper may refuse an enormous header block itself (431) or close the connection;
        // what reaches the layer is refused as too long. Never a 5xx.
        match response {
            Ok(response) => {
                let status = response.status();
                assert!(!status.is_server_error(), "{len}: {status}");
                assert!(
                    status == 401 || status == 431 || status == 400,
                    "{len}: {status}"
                );
                if len == 9 * 1024 {
                    crate::support::answer(response)
                        .await
                        .assert_invalid_token("token too long");
                }
            }
            // Only a header block hyper itself refuses may end the connection.
            Err(e) => assert!(len > 9 * 1024, "{len}: {e}"),
        }
    }
}

#[tokio::test]
async fn an_id_token_is_not_an_access_token() {
    // Cross-JWT confusion (RFC 8725 section 2.8): an OIDC ID token is meant for the
    // client, so its audience is the client id, never this API.
    let server = rsa_server().await;
    let id_token = token(rsa_key())
        .audience("my-spa-client-id")
        .claim("nonce", "n-0S6_WzA2Mj")
        .claim("auth_time", 1_700_000_000)
        .sign();
    server
        .bearer(&id_token)
        .await
        .assert_invalid_token("audience not accepted");
}

#[tokio::test]
async fn tokens_for_other_purposes_are_refused_by_type() {
    // Explicit typing (RFC 8725 section 3.11): a logout token or a security event token
    // signed by the same issuer for the same audience is not an access token.
    let server = rsa_server().await;
    for typ in ["logout+jwt", "secevent+jwt", "dpop+jwt", "id_token+jwt"] {
        let t = token(rsa_key()).typ(typ).sign();
        server
            .bearer(&t)
            .await
            .assert_invalid_token("unexpected token type");
    }
}

#[tokio::test]
async fn curve_confusion_es256_token_naming_a_p384_key_is_refused() {
    let p384 = crate::support::ec384_key();
    let keys = KeySet::from_jwks_value(&jwks([ec_key(), p384])).expect("jwks");
    let server = server_with(keys).await;
    let t = token(ec_key()).kid(p384.kid()).sign();
    server
        .bearer(&t)
        .await
        .assert_invalid_token("key does not match algorithm");
}

#[tokio::test]
async fn hmac_configuration_refuses_asymmetric_tokens() {
    // The reverse confusion: with a shared secret configured, an RS256 token cannot make
    // the verifier treat the secret as an RSA key.
    let secret = TestKey::hmac().with_kid("shared");
    let server = server_with(secret.key_set()).await;
    let t = token(rsa_key()).kid("shared").sign();
    server
        .bearer(&t)
        .await
        .assert_invalid_token("algorithm not allowed");
}

#[tokio::test]
async fn weak_rsa_keys_are_not_loaded() {
    // RFC 7518 section 3.3: RSA keys under 2048 bits (Yahoo publishes 1024-bit ones).
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/idp/yahoo/jwks.json"
    );
    let text = std::fs::read_to_string(path).expect("fixture");
    let keys = KeySet::from_jwks_json(&text).expect("loads");
    assert!(keys.iter().all(|k| k.algorithms() == [Algorithm::ES256]));
    let mut jwk = rsa_key().public_jwk();
    let n = URL_SAFE_NO_PAD
        .decode(jwk["n"].as_str().expect("n"))
        .expect("b64");
    jwk["n"] = json!(URL_SAFE_NO_PAD.encode(&n[..128]));
    assert!(
        KeySet::from_jwks_value(&json!({"keys": [jwk]}))
            .expect("set")
            .is_empty()
    );
}

#[tokio::test]
async fn audience_injection_in_an_array_needs_an_exact_member() {
    let server = rsa_server().await;
    for aud in [
        json!([format!("{AUDIENCE}/")]),
        json!([format!("{AUDIENCE} ")]),
        json!([AUDIENCE.to_uppercase()]),
        json!([[AUDIENCE]]),
        json!({"aud": AUDIENCE}),
    ] {
        let t = token(rsa_key()).claim("aud", aud.clone()).sign();
        let answer = server.bearer(&t).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{aud}: {answer:?}");
    }
}

#[tokio::test]
async fn the_layer_answers_every_broken_token_without_a_5xx() {
    // A sweep through all presets and odd inputs at once, checking the one invariant.
    let server = rsa_server().await;
    let mut tokens = vec![
        token(rsa_key()).expired().sign(),
        token(rsa_key()).not_yet_valid().sign(),
        token(rsa_key()).wrong_issuer().sign(),
        token(rsa_key()).wrong_audience().sign(),
        token(rsa_key()).unknown_kid().sign(),
        token(rsa_key()).tampered().sign(),
        token(rsa_key()).alg_none().sign(),
        token(rsa_key()).signed_by_foreign_key().sign(),
        "..".into(),
        "a.b.c".into(),
        "e30.e30.e30".into(),
        "e30.e30.".into(),
        ".e30.".into(),
    ];
    tokens.push(STANDARD.encode("{}.{}.{}"));
    for t in tokens {
        let answer = server.bearer(&t).await;
        assert!(!answer.status.is_server_error(), "{t}: {answer:?}");
        assert!(answer.status.is_client_error(), "{t}: {answer:?}");
    }
}

#[test]
fn build_refuses_an_hmac_secret_mixed_with_a_jwks() {
    let err = builder(rsa_key().key_set())
        .hmac_secret(vec![1u8; 64])
        .build()
        .expect_err("mixed");
    assert_eq!(err.kind(), ConfigErrorKind::MixedKeyTypes);
    builder(rsa_key_2().key_set())
        .build()
        .expect("the same keys without the secret build");
}
