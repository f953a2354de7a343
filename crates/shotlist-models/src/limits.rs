//! The documented limits of each video API, as data.
//!
//! One [`ApiLimits`] table per API. Validation, the JSON Schema, the emulator and the
//! renderer all read these tables; no other module hard-codes a size, a duration or a
//! variant count. Sources: `shared/docs/video-apis.md` (where two documents disagree,
//! the stricter value is used).

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which service protocol a manifest's shots are rendered with.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Api {
    /// Azure OpenAI video generation jobs API (model `sora`): `/openai/v1/video/generations/jobs`.
    AzureJobs,
    /// OpenAI-style videos API (Sora 2 on OpenAI and Azure, and compatible proxies): `/v1/videos`.
    OpenaiVideos,
}

impl Api {
    pub const ALL: [Api; 2] = [Api::AzureJobs, Api::OpenaiVideos];

    pub fn as_str(self) -> &'static str {
        match self {
            Api::AzureJobs => "azure-jobs",
            Api::OpenaiVideos => "openai-videos",
        }
    }

    pub fn parse(s: &str) -> Option<Api> {
        Api::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// The longest prompt file worth reading: the longest prompt any API takes, at four
    /// bytes a character (UTF-8's widest). Anything larger is refused unread.
    pub fn max_prompt_file_bytes() -> u64 {
        let chars = Api::ALL
            .iter()
            .map(|a| a.limits().prompt_max_chars)
            .max()
            .unwrap_or(0);
        chars as u64 * 4
    }

    pub fn limits(self) -> &'static ApiLimits {
        match self {
            Api::AzureJobs => &AZURE_JOBS,
            Api::OpenaiVideos => &OPENAI_VIDEOS,
        }
    }
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A frame size, `WIDTHxHEIGHT` in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Size {
    pub width: u32,
    pub height: u32,
}

impl Size {
    pub const fn new(width: u32, height: u32) -> Size {
        Size { width, height }
    }

    /// Parses `WIDTHxHEIGHT` (e.g. `1280x720`). Only the shape is checked here.
    pub fn parse(s: &str) -> Option<Size> {
        let (w, h) = s.split_once('x')?;
        let digits =
            |t: &str| !t.is_empty() && t.len() <= 5 && t.bytes().all(|b| b.is_ascii_digit());
        if !digits(w) || !digits(h) {
            return None;
        }
        Some(Size::new(w.parse().ok()?, h.parse().ok()?))
    }

    pub fn pixels(self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

/// One allowed frame size and what it permits.
#[derive(Clone, Copy, Debug)]
pub struct SizeRule {
    pub size: Size,
    /// Most variants one job may ask for at this size.
    pub max_variants: u32,
    /// When set, only models whose name starts with this prefix may use the size
    /// (`sora-2-pro` sizes on the videos API). Custom deployment names that do not
    /// look like a known model are not second-guessed.
    pub model_prefix: Option<&'static str>,
}

/// Which durations an API accepts.
#[derive(Clone, Copy, Debug)]
pub enum SecondsRule {
    /// Any whole number of seconds in `min..=max`.
    Range { min: u32, max: u32 },
    /// Exactly one of these values.
    OneOf(&'static [u32]),
}

impl SecondsRule {
    pub fn allows(&self, seconds: u32) -> bool {
        match *self {
            SecondsRule::Range { min, max } => (min..=max).contains(&seconds),
            SecondsRule::OneOf(values) => values.contains(&seconds),
        }
    }

    /// Human wording for `help:` lines, e.g. `1 to 20` or `4, 8 or 12`.
    pub fn describe(&self) -> String {
        match *self {
            SecondsRule::Range { min, max } => format!("a whole number from {min} to {max}"),
            SecondsRule::OneOf(values) => join_or(values.iter().map(u32::to_string)),
        }
    }
}

/// Everything the service documents about valid requests, for one API.
#[derive(Debug)]
pub struct ApiLimits {
    pub api: Api,
    pub default_model: &'static str,
    pub sizes: &'static [SizeRule],
    /// Size used when neither the shot nor `defaults` names one. `None`: required.
    pub default_size: Option<Size>,
    pub seconds: SecondsRule,
    pub default_seconds: u32,
    pub default_variants: u32,
    /// Whether one job can produce several variants (`n_variants`). When false, shotlist
    /// submits one job per variant.
    pub variants_per_job: bool,
    /// Prompt length in Unicode scalar values.
    pub prompt_min_chars: usize,
    pub prompt_max_chars: usize,
    /// Jobs the service runs at once per resource.
    pub max_running_jobs: usize,
    /// Default request quota, requests per minute.
    pub requests_per_minute: u32,
    /// How long jobs and their content stay downloadable, in seconds.
    pub retention_seconds: u64,
}

impl ApiLimits {
    pub fn size_rule(&self, size: Size) -> Option<&SizeRule> {
        self.sizes.iter().find(|r| r.size == size)
    }

    /// Largest variant count of any size (the hard upper bound on `variants`).
    pub fn max_variants_any_size(&self) -> u32 {
        self.sizes.iter().map(|r| r.max_variants).max().unwrap_or(1)
    }

    /// `480x480, 480x854, ...` for help lines.
    pub fn sizes_list(&self) -> String {
        self.sizes
            .iter()
            .map(|r| r.size.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Azure OpenAI `sora` jobs. Variants: the concept doc's stricter rule (1080p: 1,
/// 720p: 2, others: 4) rather than the API text's "1 to 5".
pub static AZURE_JOBS: ApiLimits = ApiLimits {
    api: Api::AzureJobs,
    default_model: "sora",
    sizes: &[
        SizeRule {
            size: Size::new(480, 480),
            max_variants: 4,
            model_prefix: None,
        },
        SizeRule {
            size: Size::new(480, 854),
            max_variants: 4,
            model_prefix: None,
        },
        SizeRule {
            size: Size::new(854, 480),
            max_variants: 4,
            model_prefix: None,
        },
        SizeRule {
            size: Size::new(720, 720),
            max_variants: 2,
            model_prefix: None,
        },
        SizeRule {
            size: Size::new(720, 1280),
            max_variants: 2,
            model_prefix: None,
        },
        SizeRule {
            size: Size::new(1280, 720),
            max_variants: 2,
            model_prefix: None,
        },
        SizeRule {
            size: Size::new(1080, 1080),
            max_variants: 1,
            model_prefix: None,
        },
        SizeRule {
            size: Size::new(1080, 1920),
            max_variants: 1,
            model_prefix: None,
        },
        SizeRule {
            size: Size::new(1920, 1080),
            max_variants: 1,
            model_prefix: None,
        },
    ],
    default_size: None,
    seconds: SecondsRule::Range { min: 1, max: 20 },
    default_seconds: 5,
    default_variants: 1,
    variants_per_job: true,
    prompt_min_chars: 1,
    prompt_max_chars: 4000,
    max_running_jobs: 2,
    requests_per_minute: 60,
    retention_seconds: 24 * 60 * 60,
};

/// OpenAI-style `/v1/videos` (Sora 2). No variants field: N variants are N jobs, and
/// shotlist caps them at 4 per shot so one line of a manifest cannot order a fleet.
pub static OPENAI_VIDEOS: ApiLimits = ApiLimits {
    api: Api::OpenaiVideos,
    default_model: "sora-2",
    sizes: &[
        SizeRule {
            size: Size::new(720, 1280),
            max_variants: 4,
            model_prefix: None,
        },
        SizeRule {
            size: Size::new(1280, 720),
            max_variants: 4,
            model_prefix: None,
        },
        SizeRule {
            size: Size::new(1024, 1792),
            max_variants: 4,
            model_prefix: Some("sora-2-pro"),
        },
        SizeRule {
            size: Size::new(1792, 1024),
            max_variants: 4,
            model_prefix: Some("sora-2-pro"),
        },
    ],
    default_size: Some(Size::new(720, 1280)),
    seconds: SecondsRule::OneOf(&[4, 8, 12]),
    default_seconds: 4,
    default_variants: 1,
    variants_per_job: false,
    prompt_min_chars: 1,
    prompt_max_chars: 32000,
    max_running_jobs: 2,
    requests_per_minute: 60,
    retention_seconds: 24 * 60 * 60,
};

/// Whether `model` is a name we know cannot use a size restricted to `prefix`.
/// `sora-2` and its dated snapshots are known not to be `sora-2-pro`; other names
/// (Azure deployment names, proxies) are given the benefit of the doubt.
pub fn model_excluded_from(model: &str, prefix: &str) -> bool {
    if model.starts_with(prefix) {
        return false;
    }
    model == "sora-2" || model.starts_with("sora-2-2")
}

fn join_or(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    match items.len() {
        0 => String::new(),
        1 => items[0].clone(),
        n => format!("{} or {}", items[..n - 1].join(", "), items[n - 1]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn azure_variant_rule_matches_the_concept_doc() {
        let l = Api::AzureJobs.limits();
        let max = |w, h| l.size_rule(Size::new(w, h)).unwrap().max_variants;
        assert_eq!(max(1920, 1080), 1);
        assert_eq!(max(1080, 1080), 1);
        assert_eq!(max(1280, 720), 2);
        assert_eq!(max(720, 720), 2);
        assert_eq!(max(480, 854), 4);
        assert!(l.size_rule(Size::new(1024, 1792)).is_none());
    }

    #[test]
    fn size_parse_rejects_malformed() {
        assert_eq!(Size::parse("1280x720"), Some(Size::new(1280, 720)));
        for bad in [
            "1280X720",
            "1280x",
            "x720",
            "12 80x720",
            "-1x2",
            "1280x720x3",
            "",
        ] {
            assert_eq!(Size::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn seconds_rules() {
        assert!(AZURE_JOBS.seconds.allows(1) && AZURE_JOBS.seconds.allows(20));
        assert!(!AZURE_JOBS.seconds.allows(0) && !AZURE_JOBS.seconds.allows(21));
        assert!(OPENAI_VIDEOS.seconds.allows(8) && !OPENAI_VIDEOS.seconds.allows(5));
        assert_eq!(OPENAI_VIDEOS.seconds.describe(), "4, 8 or 12");
    }

    #[test]
    fn pro_sizes_exclude_only_known_non_pro_models() {
        assert!(model_excluded_from("sora-2", "sora-2-pro"));
        assert!(model_excluded_from("sora-2-2025-10-06", "sora-2-pro"));
        assert!(!model_excluded_from("sora-2-pro-2025-10-06", "sora-2-pro"));
        assert!(!model_excluded_from("my-deployment", "sora-2-pro"));
    }
}
