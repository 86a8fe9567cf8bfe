//! `Verifier::explain`: the checks the layer ran, in the order it ran them, from the
//! trace the core records; a check not run says so; a failed check shows what it compared.

use tower_jwt_auth::dpop::{DpopMode, DpopOptions};
use tower_jwt_auth::explain::{CheckStatus, Explanation};
use tower_jwt_auth::introspection::{ClientAuth, Introspection};
use tower_jwt_auth::state::MemoryRevocationList;
use tower_jwt_auth::testing::MockIssuer;
use tower_jwt_auth::testing::TestKey;
use tower_jwt_auth::{ErrorKind, Verifier};

use crate::support::{AUDIENCE, builder, ec_key, token};

fn status(report: &Explanation, name: &str) -> CheckStatus {
    report
        .checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name}"))
        .status
}

#[tokio::test]
async fn a_token_refused_for_its_binding_shows_the_later_checks_as_not_run() {
    // A revocation list and single use: the state step would run if the binding held.
    let config = builder(ec_key().key_set())
        .dpop(DpopOptions::new(DpopMode::Allowed).public_base_url("https://api.example.test"))
        .require_permissions(["read"])
        .revocation_list(MemoryRevocationList::default())
        .single_use_tokens(true)
        .build()
        .expect("config");
    let client = TestKey::ec_p256();
    // Bound to a DPoP key, explained without a proof: the binding is what fails.
    let bound = token(ec_key())
        .dpop_bound(&client)
        .permissions(["read"])
        .sign();
    let report = Verifier::new(config).explain(&bound).await;
    assert!(!report.accepted);
    assert_eq!(report.error, Some(ErrorKind::BindingMismatch), "{report}");
    assert_eq!(status(&report, "signature"), CheckStatus::Passed);
    assert_eq!(status(&report, "claims"), CheckStatus::Passed);
    assert_eq!(status(&report, "binding"), CheckStatus::Failed);
    // The layer checks the binding before the permissions: they never ran.
    assert_eq!(
        status(&report, "permissions"),
        CheckStatus::NotRun,
        "{report}"
    );
    assert_eq!(status(&report, "state"), CheckStatus::NotRun);
}

#[tokio::test]
async fn checks_the_configuration_does_not_call_for_are_not_run_even_when_accepted() {
    let config = builder(ec_key().key_set()).build().expect("config");
    let report = Verifier::new(config).explain(&token(ec_key()).sign()).await;
    assert!(report.accepted, "{report}");
    for name in [
        "length",
        "structure",
        "issuer",
        "signature",
        "audience",
        "claims",
    ] {
        assert_eq!(
            status(&report, name),
            CheckStatus::Passed,
            "{name}: {report}"
        );
    }
    for name in ["introspection", "binding", "permissions", "state"] {
        assert_eq!(
            status(&report, name),
            CheckStatus::NotRun,
            "{name}: {report}"
        );
    }
}

#[tokio::test]
async fn a_failed_check_shows_the_values_it_compared() {
    let verifier = Verifier::new(builder(ec_key().key_set()).build().expect("config"));

    let other = token(ec_key()).audience("https://other.example").sign();
    let report = verifier.explain(&other).await;
    let audience = report.failed_check().expect("a failed check");
    assert_eq!(audience.name, "audience");
    let detail = audience.detail.as_deref().expect("a detail");
    assert!(detail.contains("https://other.example"), "{detail}");
    assert!(detail.contains(AUDIENCE), "{detail}");
    assert_eq!(status(&report, "expiry"), CheckStatus::NotRun);

    let expired = token(ec_key()).expires_in_secs(-3600).sign();
    let report = verifier.explain(&expired).await;
    let expiry = report.failed_check().expect("a failed check");
    assert_eq!(expiry.name, "expiry");
    let detail = expiry.detail.as_deref().expect("a detail");
    assert!(
        detail.starts_with("exp passed 3600 s ago") || detail.starts_with("exp passed 3601 s ago"),
        "{detail}"
    );
    assert!(report.to_string().contains("exp passed"), "{report}");
}

#[tokio::test]
async fn a_refusal_after_verification_is_reported_where_the_core_stopped() {
    // Single use needs a `jti`: a token without one passes verification, the
    // permissions and revocation, and stops in the state step.
    let config = builder(ec_key().key_set())
        .require_permissions(["read"])
        .single_use_tokens(true)
        .build()
        .expect("config");
    let report = Verifier::new(config)
        .explain(
            &token(ec_key())
                .permissions(["read"])
                .without_claim("jti")
                .sign(),
        )
        .await;
    assert_eq!(report.error, Some(ErrorKind::MissingClaim), "{report}");
    assert_eq!(status(&report, "claims"), CheckStatus::Passed, "{report}");
    assert_eq!(status(&report, "permissions"), CheckStatus::Passed);
    assert_eq!(status(&report, "state"), CheckStatus::Failed);
}

#[tokio::test]
async fn an_opaque_token_refused_for_its_answer_shows_no_jws_checks() {
    let issuer = MockIssuer::start().await;
    issuer.add_client("api", "s3cret", Vec::<String>::new());
    let config = crate::support::issuer_config(&issuer)
        .introspection(Introspection::new(
            "api",
            ClientAuth::client_secret_basic("s3cret"),
        ))
        .build()
        .expect("config");
    let opaque = issuer.opaque(&issuer.token().wrong_audience());
    let report = Verifier::new(config).explain(&opaque).await;
    assert_eq!(report.error, Some(ErrorKind::InvalidAudience), "{report}");
    for name in [
        "structure",
        "issuer",
        "algorithm",
        "header",
        "key",
        "signature",
    ] {
        assert_eq!(
            status(&report, name),
            CheckStatus::NotRun,
            "{name}: {report}"
        );
    }
    assert_eq!(status(&report, "introspection"), CheckStatus::Passed);
    let audience = report.failed_check().expect("a failed check");
    assert_eq!(audience.name, "audience");
    // An opaque token has nothing to read the values from.
    assert_eq!(audience.detail, None);
}

#[tokio::test]
async fn an_api_key_is_explained_by_its_own_check() {
    use std::time::{Duration, SystemTime};
    use tower_jwt_auth::api_key::{ApiKey, NewApiKey};
    let key = NewApiKey::generate("sk_test_");
    let old = NewApiKey::generate("sk_test_");
    let config = builder(ec_key().key_set())
        .api_key_prefix("sk_test_")
        .api_key(ApiKey::new("partner-1", key.digest()).permissions(["read"]))
        .api_key(
            ApiKey::new("retired", old.digest())
                .expires_at(SystemTime::now() - Duration::from_secs(60)),
        )
        .build()
        .expect("config");
    let verifier = Verifier::new(config);
    let accepted = verifier.explain(key.key()).await;
    assert!(accepted.accepted);
    assert_eq!(status(&accepted, "api-key"), CheckStatus::Passed);
    for name in ["structure", "key", "signature", "introspection", "expiry"] {
        assert_eq!(status(&accepted, name), CheckStatus::NotRun, "{name}");
    }
    for unknown in ["sk_test_unknown", old.key()] {
        let refused = verifier.explain(unknown).await;
        assert!(!refused.accepted);
        assert_eq!(
            status(&refused, "api-key"),
            CheckStatus::Failed,
            "{refused:?}"
        );
        assert_eq!(status(&refused, "key"), CheckStatus::NotRun);
    }
    // A token is no key: the check is not run.
    let jwt = verifier.explain(&token(ec_key()).sign()).await;
    assert_eq!(status(&jwt, "api-key"), CheckStatus::NotRun);
}
