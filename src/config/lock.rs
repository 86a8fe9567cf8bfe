//! Profiles: the options a [`Profile`] presets, and the rules it locks, checked once on
//! the final model at `build()`, whichever setter or file key came last.
//!
//! Each rule is a row of [`RULES`]: its name, where it comes from (the standard the
//! profile is named after, or the profile's own stricter choice), and its check. A
//! check answers the option's path and what is wrong; the message names the rule and
//! its source, so a refused build says which requirement a setting breaks.

use std::time::Duration;

use super::code::CodeParts;
use super::model::Declared;
use crate::algorithm::Algorithm;
use crate::error::{ConfigError, ConfigErrorKind};
use crate::policy::TypPolicy;
use crate::profile::Profile;

/// The algorithms FAPI 2.0 allows (Security Profile section 5.4).
pub(crate) const FAPI2_ALGORITHMS: [Algorithm; 3] =
    [Algorithm::PS256, Algorithm::ES256, Algorithm::EdDSA];

/// The claims RFC 9068 section 2.2 makes mandatory in a JWT access token.
pub(crate) const RFC9068_CLAIMS: [&str; 7] =
    ["iss", "exp", "aud", "sub", "client_id", "iat", "jti"];

/// The maximum token lifetime FAPI 2.0 presets unless one is set.
pub(crate) const FAPI2_MAX_LIFETIME: Duration = Duration::from_secs(3600);

/// The most clock skew the `fapi2` profile tolerates, on token dates and DPoP proofs.
pub(crate) const FAPI2_MAX_SKEW: Duration = Duration::from_secs(60);

/// Where a rule comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// FAPI 2.0 Security Profile, this section.
    Fapi2(&'static str),
    /// RFC 9068, this section: FAPI 2.0's profile adopts it as its own stricter choice,
    /// the `rfc9068_strict` profile as its standard.
    Rfc9068(&'static str),
    /// The `fapi2` profile's own choice, stricter than FAPI 2.0 asks.
    Fapi2Own,
}

/// A violation: the option's path and what it does.
type Violation = (String, String);

/// One rule a profile locks.
struct Rule {
    /// What it requires, as its message names it.
    name: &'static str,
    source: Source,
    check: fn(&Declared, &CodeParts) -> Option<Violation>,
}

/// Every rule, each with the profiles that lock it.
const RULES: [(&[Profile], Rule); 10] = [
    (
        &[Profile::Fapi2],
        Rule {
            name: "access tokens only from the Authorization header",
            source: Source::Fapi2("5.3.4"),
            check: header_only,
        },
    ),
    (
        &[Profile::Fapi2],
        Rule {
            name: "only the algorithms PS256, ES256 and EdDSA",
            source: Source::Fapi2("5.4"),
            check: algorithms,
        },
    ),
    (
        &[Profile::Fapi2],
        Rule {
            name: "only sender-constrained access tokens (DPoP or mTLS)",
            source: Source::Fapi2("5.3.4, with 5.3.2.1"),
            check: sender_constrained,
        },
    ),
    (
        &[Profile::Fapi2],
        Rule {
            name: "a valid access token on every request the resource serves",
            source: Source::Fapi2("5.3.4"),
            check: every_request,
        },
    ),
    (
        &[Profile::Fapi2],
        Rule {
            name: "the token's validity, integrity, expiry and revocation status checked",
            source: Source::Fapi2("5.3.4"),
            check: validity_and_revocation,
        },
    ),
    (
        &[Profile::Fapi2, Profile::Rfc9068Strict],
        Rule {
            name: "`typ` must be at+jwt",
            source: Source::Rfc9068("2.1 and 4"),
            check: typ,
        },
    ),
    (
        &[Profile::Fapi2, Profile::Rfc9068Strict],
        Rule {
            name: "iss, exp, aud, sub, client_id, iat and jti required, the audience checked",
            source: Source::Rfc9068("2.2 and 4"),
            check: claims,
        },
    ),
    (
        &[Profile::Fapi2],
        Rule {
            name: "a maximum token lifetime",
            source: Source::Fapi2Own,
            check: max_lifetime,
        },
    ),
    (
        &[Profile::Fapi2],
        Rule {
            name: "TLS for every connection to another server (loopback excepted)",
            source: Source::Fapi2("5.2.1"),
            check: https,
        },
    ),
    (
        &[Profile::Fapi2],
        Rule {
            name: "at most 60 s of clock skew, on token dates and DPoP proofs",
            source: Source::Fapi2Own,
            check: skew,
        },
    ),
];

/// Sets what `profile` presets; what it locks is checked by [`check`]. A profile never
/// replaces one that holds more rules (a file's `rfc9068_strict` over code's `fapi2`
/// keeps `fapi2`), and a preset never widens what is already narrower: an algorithm list
/// keeps only its allowed members, a shorter maximum lifetime and a smaller leeway stay.
pub(crate) fn preset(d: &mut Declared, profile: Profile) {
    let profile = match d.profile {
        Some(held) if held.includes(profile) => held,
        _ => profile,
    };
    d.profile = Some(profile);
    d.typ = TypPolicy::AccessToken;
    for claim in RFC9068_CLAIMS {
        if !d.required_claims.iter().any(|c| c == claim) {
            d.required_claims.push(claim.to_owned());
        }
    }
    if profile == Profile::Fapi2 {
        let narrowed: Vec<Algorithm> = d
            .algorithms
            .iter()
            .flatten()
            .copied()
            .filter(|a| FAPI2_ALGORITHMS.contains(a))
            .collect();
        d.algorithms = Some(if narrowed.is_empty() {
            FAPI2_ALGORITHMS.to_vec()
        } else {
            narrowed
        });
        let lifetime = d
            .max_lifetime
            .map_or(FAPI2_MAX_LIFETIME, |max| max.min(FAPI2_MAX_LIFETIME));
        d.max_lifetime = Some(lifetime);
        d.leeway = d.leeway.min(FAPI2_MAX_SKEW);
        d.sender_constrained = true;
    }
}

/// A reload may not drop or weaken the profile in force.
///
/// # Errors
///
/// The profile the reload would drop.
pub(crate) fn check_reload(d: &Declared, previous: Option<Profile>) -> Result<(), ConfigError> {
    match previous {
        Some(held) if !d.profile.is_some_and(|new| new.includes(held)) => Err(ConfigError::at(
            ConfigErrorKind::ProfileViolation,
            "profile",
            None,
            format!(
                "the configuration in force holds profile {held}: a reload cannot drop it (name profile {held} in what is reloaded)"
            ),
        )),
        _ => Ok(()),
    }
}

/// The first rule of the profile that the final options break.
///
/// # Errors
///
/// That rule, its source and the option that breaks it.
pub(crate) fn check(d: &Declared, code: &CodeParts) -> Result<(), ConfigError> {
    let Some(profile) = d.profile else {
        return Ok(());
    };
    for (profiles, rule) in &RULES {
        if !profiles.contains(&profile) {
            continue;
        }
        if let Some((path, problem)) = (rule.check)(d, code) {
            let source = match (rule.source, profile) {
                (Source::Fapi2(section), _) => {
                    format!("FAPI 2.0 Security Profile, section {section}")
                }
                (Source::Rfc9068(section), Profile::Rfc9068Strict) => {
                    format!("RFC 9068, section {section}")
                }
                (Source::Rfc9068(section), _) => format!(
                    "the {profile} profile's own rule, stricter than FAPI 2.0: RFC 9068, section {section}"
                ),
                (Source::Fapi2Own, _) => {
                    format!("the {profile} profile's own rule, stricter than FAPI 2.0")
                }
            };
            return Err(ConfigError::at(
                ConfigErrorKind::ProfileViolation,
                path,
                None,
                format!(
                    "profile {profile} requires {} ({source}): {problem}",
                    rule.name
                ),
            ));
        }
    }
    Ok(())
}

fn violation(path: &str, problem: &str) -> Option<Violation> {
    Some((path.to_owned(), problem.to_owned()))
}

fn header_only(d: &Declared, code: &CodeParts) -> Option<Violation> {
    if let Some(source) = &code.token_source
        && !source.is_bearer_only()
    {
        return violation(
            "token",
            "a token source other than the Authorization header is set",
        );
    }
    let token = &d.token;
    let declared = [
        ("token.bearer", !token.bearer),
        ("token.cookie", token.cookie.is_some()),
        ("token.header", token.header.is_some()),
        (
            "token.websocket_protocol",
            token.websocket_protocol.is_some(),
        ),
        ("token.query", token.query.is_some()),
    ];
    if let Some((path, _)) = declared.iter().find(|(_, set)| *set) {
        return violation(
            path,
            "tokens would be read from elsewhere than the Authorization header",
        );
    }
    let keys = &d.api_keys_settings;
    let api_keys = [
        ("api_keys", !d.api_keys.is_empty()),
        ("api_keys_settings.prefix", keys.prefix.is_some()),
        ("api_keys_settings.header", keys.header.is_some()),
        ("api_keys_settings.file", keys.file.is_some()),
    ];
    if let Some((path, _)) = api_keys.iter().find(|(_, set)| *set) {
        return violation(path, "API keys are configured");
    }
    None
}

/// The first algorithm of `list` that FAPI 2.0 does not allow.
fn first_outside(list: &[Algorithm]) -> Option<Algorithm> {
    list.iter().copied().find(|a| !FAPI2_ALGORITHMS.contains(a))
}

fn algorithms(d: &Declared, _: &CodeParts) -> Option<Violation> {
    let Some(list) = &d.algorithms else {
        return violation("algorithms", "every algorithm the keys allow is accepted");
    };
    if let Some(alg) = first_outside(list) {
        return Some(("algorithms".to_owned(), format!("{alg} is allowed")));
    }
    for (i, issuer) in d.issuers.iter().enumerate() {
        if let Some(alg) = issuer.algorithms.as_deref().and_then(first_outside) {
            return Some((
                format!("issuers[{i}].algorithms"),
                format!("{alg} is allowed"),
            ));
        }
    }
    #[cfg(feature = "dpop")]
    if let Some(dpop) = &d.dpop
        && dpop.mode != crate::dpop::DpopMode::Off
        && let Some(alg) = first_outside(&dpop.algorithms)
    {
        return Some((
            "dpop.algorithms".to_owned(),
            format!(
                "{alg} is allowed for proofs (set DpopOptions::algorithms to PS256, ES256 and EdDSA or fewer)"
            ),
        ));
    }
    None
}

fn sender_constrained(d: &Declared, _: &CodeParts) -> Option<Violation> {
    if !d.sender_constrained {
        return violation("sender_constrained", "unbound tokens are accepted");
    }
    #[cfg(feature = "dpop")]
    let dpop = d
        .dpop
        .as_ref()
        .is_some_and(|dpop| dpop.mode != crate::dpop::DpopMode::Off);
    #[cfg(not(feature = "dpop"))]
    let dpop = false;
    if !dpop && d.mtls == crate::mtls::MtlsMode::Off {
        return violation(
            "dpop",
            "neither DPoP nor mTLS is on, so no token could be accepted: turn on dpop or mtls",
        );
    }
    None
}

fn validity_and_revocation(d: &Declared, code: &CodeParts) -> Option<Violation> {
    if code.any_tenant {
        return violation(
            "dangerous",
            "every tenant of an issuer template is accepted",
        );
    }
    if code.any_audience {
        return violation("dangerous", "tokens for any audience are accepted");
    }
    #[cfg(feature = "introspection")]
    if let Some(introspection) = &d.introspection {
        if code.introspection_audience_optional || introspection.audience_optional {
            return violation(
                "introspection.audience_optional",
                "introspection answers without an audience are accepted",
            );
        }
        if introspection.always {
            return violation(
                "introspection.always_introspect",
                "JWTs would be judged by the introspection endpoint alone, without this layer's algorithm and typ checks: introspect opaque tokens only",
            );
        }
    }
    if code.revocation.is_none() && !d.state.revocation {
        return violation(
            "state.revocation",
            "nothing checks whether a JWT was revoked: set a revocation list (opaque tokens are checked by introspection)",
        );
    }
    if d.state.failure == crate::state::StoreFailure::Open {
        return violation(
            "state.failure",
            "requests would pass unchecked for revocation and DPoP replay while the store does not answer",
        );
    }
    None
}

fn every_request(d: &Declared, code: &CodeParts) -> Option<Violation> {
    if !d.exempt.is_empty() || !code.exempt_predicates.is_empty() {
        return violation(
            "exempt",
            "an exemption lets requests through without a token: serve public routes outside the layer",
        );
    }
    None
}

fn skew(d: &Declared, _: &CodeParts) -> Option<Violation> {
    if d.leeway > FAPI2_MAX_SKEW {
        return violation("leeway", "more than 60 s of clock skew is tolerated");
    }
    #[cfg(feature = "dpop")]
    if let Some(dpop) = &d.dpop
        && dpop.window > FAPI2_MAX_SKEW
    {
        return violation(
            "dpop.iat_window",
            "DPoP proofs more than 60 s from now are accepted",
        );
    }
    None
}

fn typ(d: &Declared, _: &CodeParts) -> Option<Violation> {
    (d.typ != TypPolicy::AccessToken).then(|| {
        (
            "typ".to_owned(),
            "tokens without typ at+jwt are accepted".to_owned(),
        )
    })
}

fn claims(d: &Declared, code: &CodeParts) -> Option<Violation> {
    // Under fapi2 the validity rule, checked before this one, names FAPI 2.0 for it.
    if code.any_audience {
        return violation("dangerous", "tokens for any audience are accepted");
    }
    let missing = RFC9068_CLAIMS
        .iter()
        .find(|claim| !d.required_claims.iter().any(|c| c == *claim))?;
    Some((
        "required_claims".to_owned(),
        format!("{missing} is not required"),
    ))
}

fn max_lifetime(d: &Declared, _: &CodeParts) -> Option<Violation> {
    d.max_lifetime.is_none().then(|| {
        (
            "max_lifetime".to_owned(),
            "tokens of any lifetime are accepted".to_owned(),
        )
    })
}

fn https(d: &Declared, _: &CodeParts) -> Option<Violation> {
    #[cfg(feature = "remote")]
    if d.remote.allow_http {
        return violation(
            "remote.dangerous_allow_http",
            "keys may be fetched over plain http from any host",
        );
    }
    // A Redis store holds revocations and used proofs: `rediss://`, or loopback.
    let store = url::Url::parse(&d.state.store).ok();
    if let Some(store) = store.filter(|url| url.scheme() == "redis")
        && !crate::https::is_loopback(&store)
    {
        return violation("state.store", "the Redis store is reached without TLS");
    }
    None
}
