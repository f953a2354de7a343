//! The `--api-key` check: `api-key: KEY` (Azure) or `Authorization: Bearer KEY` (both).
//!
//! Comparison is constant-time (both sides are hashed to a fixed length first, so even the
//! key's length does not leak through timing). This module must never log, echo or store
//! the presented credential.

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

/// Outcome of checking a request's credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthOutcome {
    Allowed,
    /// No credential at all.
    Missing,
    /// A credential that does not match.
    Wrong,
}

/// The credential a request presents, if any (`api-key` first).
fn presented(headers: &HeaderMap) -> Option<&[u8]> {
    if let Some(key) = headers.get("api-key") {
        return Some(key.as_bytes());
    }
    let auth = headers.get(axum::http::header::AUTHORIZATION)?.as_bytes();
    let scheme = auth.get(..7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| auth[7..].trim_ascii())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let (a, b) = (Sha256::digest(a), Sha256::digest(b));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Checks `headers` against `expected` (`None`: no key required).
pub fn check(expected: Option<&str>, headers: &HeaderMap) -> AuthOutcome {
    let Some(expected) = expected else {
        return AuthOutcome::Allowed;
    };
    match presented(headers) {
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
