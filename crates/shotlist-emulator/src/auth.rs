//! The `--api-key` check, in each service's own scheme: `api-key: KEY` or
//! `Authorization: Bearer KEY` (Azure, OpenAI), `Authorization: Key KEY` (fal, where the key
//! may be `id:secret`), `Authorization: Bearer TOKEN` or `Token TOKEN` (Replicate),
//! `Authorization: Bearer KEY` (OpenRouter).
//!
//! Comparison is constant-time (both sides are hashed to a fixed length first, so even the
//! key's length does not leak through timing). This module must never log, echo or store
//! the presented credential.

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

use super::errors::Flavor;

/// Outcome of checking a request's credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthOutcome {
    Allowed,
    /// No credential at all.
    Missing,
    /// A credential that does not match.
    Wrong,
}

/// The `Authorization` schemes a service takes (with their trailing space).
fn schemes(flavor: Flavor) -> &'static [&'static [u8]] {
    match flavor {
        Flavor::Azure | Flavor::OpenAi | Flavor::OpenRouter => &[b"bearer "],
        Flavor::Fal => &[b"key "],
        Flavor::Replicate => &[b"bearer ", b"token "],
    }
}

/// The credential a request presents, if any (`api-key` first, where the service reads it).
fn presented(headers: &HeaderMap, flavor: Flavor) -> Option<&[u8]> {
    if matches!(flavor, Flavor::Azure | Flavor::OpenAi)
        && let Some(key) = headers.get("api-key")
    {
        return Some(key.as_bytes());
    }
    let auth = headers.get(axum::http::header::AUTHORIZATION)?.as_bytes();
    schemes(flavor).iter().find_map(|scheme| {
        auth.get(..scheme.len())?
            .eq_ignore_ascii_case(scheme)
            .then(|| auth[scheme.len()..].trim_ascii())
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let (a, b) = (Sha256::digest(a), Sha256::digest(b));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Checks `headers` against `expected` (`None`: no key required), in `flavor`'s schemes.
pub fn check(expected: Option<&str>, headers: &HeaderMap, flavor: Flavor) -> AuthOutcome {
    let Some(expected) = expected else {
        return AuthOutcome::Allowed;
    };
    match presented(headers, flavor) {
        None => AuthOutcome::Missing,
        Some(key) if constant_time_eq(key, expected.as_bytes()) => AuthOutcome::Allowed,
        Some(_) => AuthOutcome::Wrong,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: &'static str, value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, value.parse().unwrap());
        h
    }

    fn check(expected: Option<&str>, headers: &HeaderMap) -> AuthOutcome {
        super::check(expected, headers, Flavor::Azure)
    }

    #[test]
    fn fal_takes_key_and_replicate_bearer_or_token() {
        let fal = |h: &HeaderMap| super::check(Some("id:secret"), h, Flavor::Fal);
        assert_eq!(
            fal(&headers("authorization", "Key id:secret")),
            AuthOutcome::Allowed
        );
        assert_eq!(
            fal(&headers("authorization", "Bearer id:secret")),
            AuthOutcome::Missing
        );
        assert_eq!(fal(&headers("api-key", "id:secret")), AuthOutcome::Missing);
        assert_eq!(
            fal(&headers("authorization", "Key id:other")),
            AuthOutcome::Wrong
        );
        let replicate = |h: &HeaderMap| super::check(Some("r8_t"), h, Flavor::Replicate);
        for value in ["Bearer r8_t", "Token r8_t", "token r8_t"] {
            let mut h = HeaderMap::new();
            h.insert("authorization", value.parse().unwrap());
            assert_eq!(replicate(&h), AuthOutcome::Allowed, "{value}");
        }
        assert_eq!(
            replicate(&headers("authorization", "Key r8_t")),
            AuthOutcome::Missing
        );
    }

    #[test]
    fn accepts_either_header() {
        assert_eq!(
            check(Some("k"), &headers("api-key", "k")),
            AuthOutcome::Allowed
        );
        assert_eq!(
            check(Some("k"), &headers("authorization", "Bearer k")),
            AuthOutcome::Allowed
        );
        assert_eq!(
            check(Some("k"), &headers("authorization", "bearer k")),
            AuthOutcome::Allowed
        );
        assert_eq!(
            check(Some("k"), &headers("authorization", "Basic k")),
            AuthOutcome::Missing
        );
        assert_eq!(
            check(Some("k"), &headers("api-key", "kk")),
            AuthOutcome::Wrong
        );
        assert_eq!(check(Some("k"), &HeaderMap::new()), AuthOutcome::Missing);
        assert_eq!(check(None, &HeaderMap::new()), AuthOutcome::Allowed);
    }
}
