//! Identifiers the emulated services hand out: `task_01…`/`gen_01…` (lowercase ULIDs, as
//! Azure's), `video_…` (hex, as OpenAI's), fal request ids (UUIDs), Replicate prediction
//! ids (26 lowercase base32 characters), OpenRouter job ids (`gen-vid-<unix seconds>-<20
//! alphanumerics>`, the format its Python client documents), the tokens of media URLs (128 random bits) and
//! request ids (`apim-request-id`).
//!
//! The random part comes from a generator seeded with `--seed`, so a seeded run hands out
//! the same ids apart from their time prefix. This generator must never share its state
//! with fault injection: asking for an id must not change which faults fire.

use std::sync::Mutex;

/// Crockford base32, lowercase, as in Azure's ids (`task_01jwcet0eje35tc5jy54yjax5q`).
const CROCKFORD: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

const ALPHANUMERIC: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

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

    /// An OpenRouter video job id: `gen-vid-<unix seconds>-<20 alphanumerics>`.
    pub fn openrouter_job(&self, unix_ms: u64) -> String {
        let mut value = self.random_u128();
        let tail: String = (0..20)
            .map(|_| {
                let c = ALPHANUMERIC[(value % 62) as usize] as char;
                value /= 62;
                c
            })
            .collect();
        format!("gen-vid-{}-{tail}", unix_ms / 1000)
    }

    /// A fal queue request id: a version 4 UUID.
    pub fn fal_request(&self) -> String {
        let v4 = (self.random_u128() & !(0xF << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
        uuid_text(v4)
    }

    /// A Replicate prediction id (`gm3qorzdhgbfurvjtvhg6dckhu`): 26 random characters.
    pub fn prediction(&self) -> String {
        let (value, last) = (self.random_u128(), self.random_u128());
        (0..25)
            .map(|i| (value >> (i * 5)) & 31)
            .chain([last & 31])
            .map(|v| CROCKFORD[v as usize] as char)
            .collect()
    }

    /// The secret part of a media URL: nothing else about the job tells it.
    pub fn media_token(&self) -> String {
        format!("{:032x}", self.random_u128())
    }

    /// A UUID-shaped request id.
    pub fn request(&self) -> String {
        uuid_text(self.random_u128())
    }
}

fn uuid_text(value: u128) -> String {
    let h = format!("{value:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
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
        let request = ids.fal_request();
        assert_eq!((request.len(), &request[14..15]), (36, "4"), "{request}");
        let prediction = ids.prediction();
        assert_eq!(prediction.len(), 26);
        assert!(prediction.bytes().all(|b| CROCKFORD.contains(&b)));
        assert_ne!(ids.media_token(), ids.media_token());
        let job = ids.openrouter_job(1_748_000_000_123);
        assert!(job.starts_with("gen-vid-1748000000-"), "{job}");
        assert_eq!(job.len(), "gen-vid-1748000000-".len() + 20);
    }
}
