//! Turning JWKs and PEM documents into verification keys, once per key set.
//!
//! The rules here decide which published keys are usable at all:
//! `use`/`key_ops` must allow verification, a JWK `alg` pins the key to that algorithm,
//! symmetric keys from a JWKS are never used, RSA moduli under 2048 bits and unknown key
//! types or curves are skipped, and a leading zero octet in an RSA modulus is stripped
//! before aws-lc sees it.

use aws_lc_rs::signature::{self, ParsedPublicKey, RsaParameters, RsaPublicKeyComponents};
use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Deserialize;

use super::{KeyMaterial, VerificationKey};
use crate::algorithm::{Algorithm, KeyFamily};

/// Base64url for JWK members: padding tolerated, since some publishers add it.
const JWK_B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The smallest RSA modulus accepted (RFC 7518 section 3.3).
pub(crate) const MIN_RSA_BITS: usize = 2048;
/// The largest RSA modulus aws-lc verifies with.
const MAX_RSA_BITS: usize = 8192;

/// Why a single key was not loaded. Carries no key material.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SkipReason {
    NotForSignatures,
    SymmetricInJwks,
    UnknownKeyType,
    UnknownCurve,
    UnknownAlgorithm,
    AlgorithmDoesNotFitKey,
    WeakRsaKey,
    OversizedRsaKey,
    Malformed,
}

impl SkipReason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::NotForSignatures => "use or key_ops exclude signature verification",
            Self::SymmetricInJwks => "symmetric key in a published key set",
            Self::UnknownKeyType => "unsupported key type",
            Self::UnknownCurve => "unsupported curve",
            Self::UnknownAlgorithm => "unsupported alg",
            Self::AlgorithmDoesNotFitKey => "alg does not fit the key type",
            Self::WeakRsaKey => "RSA modulus under 2048 bits",
            Self::OversizedRsaKey => "RSA modulus over 8192 bits",
            Self::Malformed => "malformed key",
        }
    }
}

/// The members of a JWK this crate reads; every other member is ignored.
#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    key_ops: Option<Vec<String>>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
    issuer: Option<String>,
}

/// Parses one JWK taken from a JWKS document or given by the user.
pub(crate) fn jwk(
    value: &serde_json::Value,
) -> Result<VerificationKey, (Option<String>, SkipReason)> {
    let raw = RawJwk::deserialize(value).map_err(|_| (kid_of(value), SkipReason::Malformed))?;
    let kid = raw.kid.clone();
    jwk_inner(raw).map_err(|reason| (kid, reason))
}

fn kid_of(value: &serde_json::Value) -> Option<String> {
    value.get("kid")?.as_str().map(str::to_owned)
}

fn jwk_inner(raw: RawJwk) -> Result<VerificationKey, SkipReason> {
    if raw.use_.as_deref().is_some_and(|u| u != "sig") {
        return Err(SkipReason::NotForSignatures);
    }
    if let Some(ops) = &raw.key_ops
        && !ops.iter().any(|op| op == "verify")
    {
        return Err(SkipReason::NotForSignatures);
    }
    let pinned = match raw.alg.as_deref() {
        None => None,
        Some(alg) => Some(Algorithm::from_header(alg).ok_or(SkipReason::UnknownAlgorithm)?),
    };
    let material = match raw.kty.as_str() {
        "RSA" => {
            let n = decode(raw.n.as_deref())?;
            let e = decode(raw.e.as_deref())?;
            rsa_material(&n, &e, pinned)?
        }
        "EC" => {
            let (family, len) = match raw.crv.as_deref() {
                Some("P-256") => (KeyFamily::EcP256, 32),
                Some("P-384") => (KeyFamily::EcP384, 48),
                _ => return Err(SkipReason::UnknownCurve),
            };
            let x = decode(raw.x.as_deref())?;
            let y = decode(raw.y.as_deref())?;
            if x.len() != len || y.len() != len {
                return Err(SkipReason::Malformed);
            }
            let mut point = Vec::with_capacity(1 + 2 * len);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            ec_material(family, &point)?
        }
        "OKP" => {
            if raw.crv.as_deref() != Some("Ed25519") {
                return Err(SkipReason::UnknownCurve);
            }
            let x = decode(raw.x.as_deref())?;
            if x.len() != 32 {
                return Err(SkipReason::Malformed);
            }
            ed25519_material(&x)?
        }
        "oct" => return Err(SkipReason::SymmetricInJwks),
        _ => return Err(SkipReason::UnknownKeyType),
    };
    if let Some(alg) = pinned
        && alg.family() != material.family()
    {
        return Err(SkipReason::AlgorithmDoesNotFitKey);
    }
    Ok(VerificationKey {
        kid: raw.kid.map(String::into_boxed_str),
        pinned,
        material,
        issuer: raw.issuer.map(String::into_boxed_str),
    })
}

fn decode(member: Option<&str>) -> Result<Vec<u8>, SkipReason> {
    let member = member.ok_or(SkipReason::Malformed)?;
    JWK_B64.decode(member).map_err(|_| SkipReason::Malformed)
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

fn rsa_params(alg: Algorithm) -> Option<&'static RsaParameters> {
    Some(match alg {
        Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

/// Builds the parsed RSA keys, one per algorithm the key may verify, from the modulus and
/// exponent in big-endian bytes.
pub(crate) fn rsa_material(
    n: &[u8],
    e: &[u8],
    pinned: Option<Algorithm>,
) -> Result<KeyMaterial, SkipReason> {
    // PayPal and Yahoo publish moduli with a leading 0x00 octet; aws-lc refuses those.
    let n = strip_leading_zeros(n);
    let e = strip_leading_zeros(e);
    if n.is_empty() || e.is_empty() {
        return Err(SkipReason::Malformed);
    }
    let bits = n.len() * 8 - n[0].leading_zeros() as usize;
    if bits < MIN_RSA_BITS {
        return Err(SkipReason::WeakRsaKey);
    }
    if bits > MAX_RSA_BITS {
        return Err(SkipReason::OversizedRsaKey);
    }
    let components = RsaPublicKeyComponents { n, e };
    let algs: &[Algorithm] = match pinned {
        Some(ref alg) => std::slice::from_ref(alg),
        None => &Algorithm::ASYMMETRIC[..6],
    };
    let mut parsed = Vec::with_capacity(algs.len());
    for &alg in algs {
        let Some(params) = rsa_params(alg) else {
            return Err(SkipReason::AlgorithmDoesNotFitKey);
        };
        let key = components
            .to_parsed_public_key(params)
            .map_err(|_| SkipReason::Malformed)?;
        parsed.push((alg, key));
    }
    Ok(KeyMaterial::Rsa(parsed))
}

/// Parses an EC public key, given as an uncompressed point or as SubjectPublicKeyInfo.
pub(crate) fn ec_material(family: KeyFamily, bytes: &[u8]) -> Result<KeyMaterial, SkipReason> {
    let (alg, verification): (_, &'static signature::EcdsaVerificationAlgorithm) = match family {
        KeyFamily::EcP256 => (Algorithm::ES256, &signature::ECDSA_P256_SHA256_FIXED),
        KeyFamily::EcP384 => (Algorithm::ES384, &signature::ECDSA_P384_SHA384_FIXED),
        _ => return Err(SkipReason::UnknownCurve),
    };
    let key = ParsedPublicKey::new(verification, bytes).map_err(|_| SkipReason::Malformed)?;
    Ok(KeyMaterial::Ec(alg, key))
}

/// Parses an Ed25519 public key, raw (32 bytes) or as SubjectPublicKeyInfo.
pub(crate) fn ed25519_material(bytes: &[u8]) -> Result<KeyMaterial, SkipReason> {
    let key =
        ParsedPublicKey::new(&signature::ED25519, bytes).map_err(|_| SkipReason::Malformed)?;
    Ok(KeyMaterial::Ed25519(key))
}

/// Parses a DER public key of unknown type: RSA (SubjectPublicKeyInfo or PKCS#1), EC P-256,
/// EC P-384 or Ed25519 SubjectPublicKeyInfo.
pub(crate) fn der_public_key(der: &[u8]) -> Result<KeyMaterial, SkipReason> {
    if let Ok(rsa) = aws_lc_rs::rsa::PublicKey::from_der(der) {
        return rsa_material(
            rsa.modulus().big_endian_without_leading_zero(),
            rsa.exponent().big_endian_without_leading_zero(),
            None,
        );
    }
    ec_material(KeyFamily::EcP256, der)
        .or_else(|_| ec_material(KeyFamily::EcP384, der))
        .or_else(|_| {
            // A raw 32-byte string would parse as Ed25519; only SubjectPublicKeyInfo is
            // accepted from PEM.
            if der.len() == 32 {
                Err(SkipReason::Malformed)
            } else {
                ed25519_material(der)
            }
        })
        .map_err(|_| SkipReason::UnknownKeyType)
}

/// The DER bodies of the `PUBLIC KEY` and `RSA PUBLIC KEY` blocks of a PEM document.
pub(crate) fn pem_blocks(pem: &str) -> Result<Vec<Vec<u8>>, &'static str> {
    let mut blocks = Vec::new();
    let mut lines = pem.lines().map(str::trim);
    while let Some(line) = lines.next() {
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        if label != "PUBLIC KEY" && label != "RSA PUBLIC KEY" {
            return Err("PEM block is not a public key");
        }
        let end = format!("-----END {label}-----");
        let mut body = String::new();
        let mut closed = false;
        for line in lines.by_ref() {
            if line == end {
                closed = true;
                break;
            }
            body.push_str(line);
        }
        if !closed {
            return Err("PEM block is not terminated");
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|_| "corrupt key: the PEM body is not base64")?;
        blocks.push(der);
    }
    if blocks.is_empty() {
        return Err("no PEM public key block found");
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_zeros_are_stripped() {
        assert_eq!(strip_leading_zeros(&[0, 0, 1, 2]), &[1, 2]);
        assert_eq!(strip_leading_zeros(&[3]), &[3]);
        assert!(strip_leading_zeros(&[0, 0]).is_empty());
    }

    #[test]
    fn symmetric_and_encryption_keys_are_skipped() {
        let oct = serde_json::json!({"kty": "oct", "k": "c2VjcmV0", "kid": "s"});
        assert_eq!(
            jwk(&oct).err().map(|e| e.1),
            Some(SkipReason::SymmetricInJwks)
        );
        let enc = serde_json::json!({"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"});
        assert_eq!(
            jwk(&enc).err().map(|e| e.1),
            Some(SkipReason::NotForSignatures)
        );
        let ops =
            serde_json::json!({"kty": "RSA", "key_ops": ["encrypt"], "n": "AQAB", "e": "AQAB"});
        assert_eq!(
            jwk(&ops).err().map(|e| e.1),
            Some(SkipReason::NotForSignatures)
        );
        let x25519 = serde_json::json!({"kty": "OKP", "crv": "X25519", "x": "AAAA"});
        assert_eq!(
            jwk(&x25519).err().map(|e| e.1),
            Some(SkipReason::UnknownCurve)
        );
    }

    #[test]
    fn unterminated_pem_is_refused() {
        assert!(pem_blocks("-----BEGIN PUBLIC KEY-----\nAAAA\n").is_err());
        assert!(pem_blocks("nothing here").is_err());
        assert!(
            pem_blocks("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----").is_err()
        );
    }
}
