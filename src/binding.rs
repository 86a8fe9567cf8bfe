//! Sender-constrained tokens: what a token's `cnf` binds it to (a DPoP key, a client
//! certificate), what the request presents, and the check between them. A `cnf` the
//! layer is not set up to check is refused, never ignored.

#[cfg(feature = "dpop")]
use std::sync::Arc;

#[cfg(feature = "dpop")]
use http::HeaderValue;
use http::{HeaderMap, Method};
use serde::Deserialize;

#[cfg(feature = "dpop")]
use crate::dpop::proof::{ProofRules, Request};
#[cfg(feature = "dpop")]
use crate::dpop::{DpopMode, PublicUrl, UrlSource, htu};
use crate::error::ErrorKind;
use crate::mtls::{ClientCertificate, MtlsMode};
use crate::text::{Json, Text};
use crate::tracking::ProofCheck;

/// The `cnf` claim of a verified token.
#[derive(Debug, Default)]
pub(crate) struct Binding {
    jkt: Option<Box<str>>,
    x5t: Option<Box<str>>,
    /// A member other than these two, or a `cnf` that is not an object of strings.
    unknown: bool,
}

impl Binding {
    pub(crate) fn parse(raw: Json<'_>) -> Self {
        #[derive(Deserialize)]
        struct Cnf<'a> {
            #[serde(borrow)]
            jkt: Option<Text<'a>>,
            #[serde(borrow, rename = "x5t#S256")]
            x5t: Option<Text<'a>>,
            #[serde(flatten)]
            rest: serde_json::Map<String, serde_json::Value>,
        }
        match serde_json::from_str::<Cnf<'_>>(raw.get()) {
            Ok(cnf) => Self {
                unknown: !cnf.rest.is_empty() || (cnf.jkt.is_none() && cnf.x5t.is_none()),
                jkt: cnf.jkt.map(|t| t.0.into()),
                x5t: cnf.x5t.map(|t| t.0.into()),
            },
            Err(_) => Self {
                unknown: true,
                ..Self::default()
            },
        }
    }
}

/// The compiled binding settings.
#[derive(Debug, Default)]
pub(crate) struct BindingRules {
    /// Certificates a trusted TLS-terminating proxy forwards (RFC 9440).
    pub(crate) forwarded: Option<crate::mtls::ForwardedCertificates>,
    #[cfg(feature = "dpop")]
    pub(crate) dpop: Option<Arc<ProofRules>>,
    pub(crate) mtls: MtlsMode,
    /// Every token must be bound (to a DPoP key or a client certificate).
    pub(crate) sender_constrained: bool,
}

/// What a request presents for the binding check, read before verification so that a
/// wait for keys can take it along.
#[derive(Debug)]
pub(crate) struct Presented {
    #[cfg(feature = "dpop")]
    dpop: DpopPresented,
    /// The client certificate's thumbprint.
    certificate: Option<String>,
}

/// What a request presents for a DPoP proof check.
#[cfg(feature = "dpop")]
#[derive(Debug)]
struct DpopPresented {
    /// The `DPoP` header values (at most two are kept: more than one is refused).
    proofs: Vec<HeaderValue>,
    method: Method,
    /// The request's public URL (the configured base and the path, or the trusted
    /// extension's URL when it parses); `None` when there is none.
    htu: Option<String>,
}

/// A request that lacks the extension the configuration says it carries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Miswired(pub(crate) &'static str);

impl BindingRules {
    pub(crate) fn is_active(&self) -> bool {
        self.reads_dpop() || self.mtls != MtlsMode::Off
    }

    /// The RFC 9728 metadata members of sender-constrained tokens (RFC 9449 section 5.2
    /// and RFC 8705 section 3.4).
    pub(crate) fn metadata(&self) -> Vec<(&'static str, serde_json::Value)> {
        let mut members = Vec::new();
        #[cfg(feature = "dpop")]
        if let Some(dpop) = &self.dpop {
            let algs: Vec<&str> = dpop.algorithms.iter().map(|a| a.as_str()).collect();
            members.push(("dpop_signing_alg_values_supported", serde_json::json!(algs)));
            members.push((
                "dpop_bound_access_tokens_required",
                serde_json::Value::Bool(dpop.mode == DpopMode::Required),
            ));
        }
        if self.mtls != MtlsMode::Off {
            members.push((
                "tls_client_certificate_bound_access_tokens",
                serde_json::Value::Bool(true),
            ));
        }
        members
    }

    /// Whether the `DPoP` authorization scheme is read.
    pub(crate) fn reads_dpop(&self) -> bool {
        #[cfg(feature = "dpop")]
        return self.dpop.is_some();
        #[cfg(not(feature = "dpop"))]
        false
    }

    /// Reads what the request presents; `Err` for a wiring mistake.
    // The method, path and headers are read for DPoP alone.
    #[cfg_attr(not(feature = "dpop"), expect(unused_variables))]
    pub(crate) fn presented(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        extensions: &http::Extensions,
    ) -> Result<Presented, Miswired> {
        Ok(Presented {
            #[cfg(feature = "dpop")]
            dpop: self.dpop_presented(method, path, headers, extensions)?,
            certificate: match extensions.get::<ClientCertificate>() {
                Some(certificate) => Some(certificate.thumbprint()),
                None => self
                    .forwarded
                    .as_ref()
                    .and_then(|forwarded| forwarded.thumbprint(headers, extensions)),
            },
        })
    }

    /// What the request presents for a DPoP proof check; `Err` for a wiring mistake.
    #[cfg(feature = "dpop")]
    fn dpop_presented(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        extensions: &http::Extensions,
    ) -> Result<DpopPresented, Miswired> {
        let htu = match self.dpop.as_deref().map(|d| &d.url) {
            // The base was checked at build time, and the path is the request's own.
            Some(UrlSource::Base(base)) => Some(htu::join(base, path)),
            Some(UrlSource::Extension) => {
                let url = extensions.get::<PublicUrl>().ok_or(Miswired(
                    "tower-jwt-auth: DPoP reads the request's public URL from the PublicUrl request extension, and this request has none (insert it before the JwtAuthLayer, or configure DpopOptions::public_base_url)",
                ))?;
                htu::normalise(url.as_str()).map(|_| url.as_str().to_owned())
            }
            #[cfg(feature = "testing")]
            Some(UrlSource::Unset) => None,
            None => None,
        };
        Ok(DpopPresented {
            proofs: headers.get_all("dpop").iter().take(2).cloned().collect(),
            method: method.clone(),
            htu,
        })
    }

    /// Checks a verified token's binding against what the request presents (`None`: no
    /// request, as for `Verifier`). `Ok(Some(_))` is a DPoP proof whose `jti` must still
    /// be recorded as used.
    #[cfg_attr(not(feature = "dpop"), expect(unused_variables))]
    pub(crate) fn check(
        &self,
        binding: Option<&Binding>,
        dpop_scheme: bool,
        presented: Option<&Presented>,
        token: &str,
        now: f64,
    ) -> Result<Option<ProofCheck>, ErrorKind> {
        const MISMATCH: ErrorKind = ErrorKind::BindingMismatch;
        if binding.is_some_and(|b| b.unknown) {
            return Err(MISMATCH);
        }
        let x5t = binding.and_then(|b| b.x5t.as_deref());
        let jkt = binding.and_then(|b| b.jkt.as_deref());
        if self.sender_constrained && x5t.is_none() && jkt.is_none() {
            return Err(MISMATCH);
        }
        match (self.mtls, x5t) {
            (MtlsMode::Off, Some(_)) | (MtlsMode::Required, None) => return Err(MISMATCH),
            (_, Some(x5t)) => {
                let certificate = presented.and_then(|p| p.certificate.as_deref());
                if certificate != Some(x5t) {
                    return Err(MISMATCH);
                }
            }
            (_, None) => {}
        }
        // Without DPoP the scheme is not read, and a key-bound token has no proof to check.
        #[cfg(not(feature = "dpop"))]
        {
            match jkt {
                Some(_) => Err(MISMATCH),
                None => Ok(None),
            }
        }
        #[cfg(feature = "dpop")]
        self.check_dpop(jkt, dpop_scheme, presented, token, now)
    }

    /// The DPoP part of [`check`](Self::check): the token's `jkt` against the proof.
    #[cfg(feature = "dpop")]
    fn check_dpop(
        &self,
        jkt: Option<&str>,
        dpop_scheme: bool,
        presented: Option<&Presented>,
        token: &str,
        now: f64,
    ) -> Result<Option<ProofCheck>, ErrorKind> {
        const MISMATCH: ErrorKind = ErrorKind::BindingMismatch;
        let mode = self.dpop.as_deref().map_or(DpopMode::Off, |d| d.mode);
        if !dpop_scheme {
            return match (mode, jkt) {
                (_, Some(_)) | (DpopMode::Required, None) => Err(MISMATCH),
                _ => Ok(None),
            };
        }
        let (Some(rules), Some(jkt)) = (self.dpop.as_deref(), jkt) else {
            return Err(MISMATCH);
        };
        let presented = &presented.ok_or(ErrorKind::InvalidDpopProof)?.dpop;
        let [proof] = presented.proofs.as_slice() else {
            return Err(ErrorKind::InvalidDpopProof);
        };
        let proof = proof.to_str().map_err(|_| ErrorKind::InvalidDpopProof)?;
        let htu = presented
            .htu
            .as_deref()
            .ok_or(ErrorKind::InvalidDpopProof)?;
        let request = Request {
            method: presented.method.as_str(),
            htu,
            token,
            jkt,
            now,
        };
        rules.check(proof, &request).map(Some)
    }
}
