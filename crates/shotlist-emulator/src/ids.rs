//! Identifiers the emulated services hand out: `task_01…`/`gen_01…` (lowercase ULIDs, as
//! Azure's), `video_…` (hex, as OpenAI's) and request ids (`apim-request-id`).
//!
//! The random part comes from a generator seeded with `--seed`, so a seeded run hands out
//! the same ids apart from their time prefix. This generator must never share its state
//! with fault injection: asking for an id must not change which faults fire.

use std::sync::Mutex;

/// Crockford base32, lowercase, as in Azure's ids (`task_01jwcet0eje35tc5jy54yjax5q`).
const CROCKFORD: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

#[derive(Debug)]
pub struct IdGen {
    rng: Mutex<fastrand::Rng>,
}

impl IdGen {
    pub fn new(seed: u64) -> IdGen {
        // A different stream from the fault dice of the same seed.
        IdGen {
            rng: Mutex::new(fastrand::Rng::with_seed(seed ^ 0x5eed_1d50_f1d5)),
        }
    }

    fn random_u128(&self) -> u128 {
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        (u128::from(rng.u64(..)) << 64) | u128::from(rng.u64(..))
    }

    /// A lowercase ULID: 48 bits of unix milliseconds, 80 random bits.
    fn ulid(&self, unix_ms: u64) -> String {
        let value = (u128::from(unix_ms & 0xFFFF_FFFF_FFFF) << 80) | (self.random_u128() >> 48);
        (0..26)
            .rev()
            .map(|i| CROCKFORD[((value >> (i * 5)) & 31) as usize] as char)
            .collect()
    }

    pub fn job(&self, unix_ms: u64) -> String {
        format!("task_{}", self.ulid(unix_ms))
    }

    pub fn generation(&self, unix_ms: u64) -> String {
        format!("gen_{}", self.ulid(unix_ms))
    }

    pub fn video(&self) -> String {
        format!("video_{:032x}", self.random_u128())
    }

    /// A UUID-shaped request id.
    pub fn request(&self) -> String {
        let h = format!("{:032x}", self.random_u128());
        format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_look_like_the_services() {
        let ids = IdGen::new(1);
        let job = ids.job(1_748_000_000_000);
        assert!(job.starts_with("task_01"), "{job}");
        assert_eq!(job.len(), "task_".len() + 26);
        assert!(ids.generation(1_748_000_000_000).starts_with("gen_01"));
        assert_eq!(ids.video().len(), "video_".len() + 32);
        assert_eq!(ids.request().len(), 36);
        assert_eq!(IdGen::new(9).video(), IdGen::new(9).video());
    }
}
