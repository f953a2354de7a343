//! The limits of each video API, as the validator, the JSON Schema, the emulator and the
//! engine read them: a view of the catalogue (`catalogue.rs`, `catalogue.yaml`), built
//! once. No size, duration, count or model name is written in this file: they are data.

use std::fmt;
use std::sync::OnceLock;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::catalogue::{Catalogue, Model};

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
    /// fal's queue API (`queue.fal.run`): Veo, Kling, Seedance, Wan and more, one protocol.
    Fal,
    /// Replicate's predictions API (`api.replicate.com/v1`).
    Replicate,
}

impl Api {
    pub const ALL: [Api; 4] = [Api::AzureJobs, Api::OpenaiVideos, Api::Fal, Api::Replicate];

    pub fn as_str(self) -> &'static str {
        match self {
            Api::AzureJobs => "azure-jobs",
            Api::OpenaiVideos => "openai-videos",
            Api::Fal => "fal",
            Api::Replicate => "replicate",
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

    /// The API's limits, from the built-in catalogue.
    pub fn limits(self) -> &'static ApiLimits {
        static VIEWS: OnceLock<Vec<ApiLimits>> = OnceLock::new();
        let views = VIEWS.get_or_init(|| {
            let catalogue = Catalogue::builtin();
            Api::ALL
                .iter()
                .map(|api| ApiLimits::from_catalogue(catalogue, *api))
                .collect()
        });
        &views[Api::ALL
            .iter()
            .position(|a| *a == self)
            .expect("listed in ALL")]
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

impl Serialize for Size {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Size, D::Error> {
        let text = String::deserialize(d)?;
        Size::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!("`{text}` is not a size like `1280x720`"))
        })
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

/// One allowed frame size and what it permits.
#[derive(Clone, Debug)]
pub struct SizeRule {
    pub size: Size,
    /// Most variants one job (or, one job per variant, one shot) may ask for at this size.
    pub max_variants: u32,
    /// The catalogue models that take this size, when not all of the API's do
    /// (`sora-2-pro`'s 1024p sizes). Empty: every model.
    pub only_models: Vec<String>,
    /// The longest length at this size, where shorter than the model's (per model only).
    pub max_seconds: Option<u32>,
}

/// Which durations an API accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecondsRule {
    /// Any whole number of seconds in `min..=max`.
    Range { min: u32, max: u32 },
    /// Exactly one of these values.
    OneOf(Vec<u32>),
}

impl SecondsRule {
    pub fn allows(&self, seconds: u32) -> bool {
        match self {
            SecondsRule::Range { min, max } => (*min..=*max).contains(&seconds),
            SecondsRule::OneOf(values) => values.contains(&seconds),
        }
    }

    /// Human wording for `help:` lines, e.g. `1 to 20` or `4, 8 or 12`.
    pub fn describe(&self) -> String {
        match self {
            SecondsRule::Range { min, max } => format!("a whole number from {min} to {max}"),
            SecondsRule::OneOf(values) => join_or(values.iter().map(u32::to_string)),
        }
    }
}

/// Everything the service documents about valid requests, for one API.
#[derive(Debug)]
pub struct ApiLimits {
    pub api: Api,
    pub default_model: String,
    pub sizes: Vec<SizeRule>,
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
    /// The catalogue ids of this API's models (for [`ApiLimits::model_excluded`]).
    pub known_models: Vec<String>,
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

impl ApiLimits {
    /// The API's view of `catalogue`: every size any of its models takes (with the models
    /// that take it, when not all do), the default model's durations and defaults, the
    /// longest prompt any of them takes, and the provider's facts.
    pub fn from_catalogue(catalogue: &Catalogue, api: Api) -> ApiLimits {
        let provider = catalogue.provider(api);
        let default = catalogue.default_model(api);
        let models: Vec<_> = catalogue.models_of(api).collect();
        let mut sizes: Vec<SizeRule> = Vec::new();
        for m in &models {
            for entry in &m.sizes {
                match sizes.iter_mut().find(|r| r.size == entry.size) {
                    Some(rule) => rule.max_variants = rule.max_variants.max(entry.max_takes),
                    None => sizes.push(SizeRule {
                        size: entry.size,
                        max_variants: entry.max_takes,
                        only_models: Vec::new(),
                        max_seconds: None,
                    }),
                }
            }
        }
        for rule in &mut sizes {
            let takers: Vec<String> = models
                .iter()
                .filter(|m| m.sizes.iter().any(|e| e.size == rule.size))
                .map(|m| m.id.clone())
                .collect();
            if takers.len() < models.len() {
                rule.only_models = takers;
            }
        }
        ApiLimits {
            api,
            default_model: default.id.clone(),
            sizes,
            default_size: default.default_size,
            seconds: default.seconds.rule().expect("checked by `problems`"),
            default_seconds: default.default_seconds,
            default_variants: default.default_takes,
            variants_per_job: provider.takes_per_job,
            prompt_min_chars: models.iter().map(|m| m.prompt_chars.min).min().unwrap_or(1),
            prompt_max_chars: models.iter().map(|m| m.prompt_chars.max).max().unwrap_or(1),
            max_running_jobs: provider.max_running_jobs,
            requests_per_minute: provider.requests_per_minute,
            retention_seconds: provider.retention_seconds,
            known_models: models.iter().map(|m| m.id.clone()).collect(),
        }
    }

    /// The limits of one model alone: its sizes, durations, takes and prompt length, with
    /// its provider's facts.
    pub fn for_model(catalogue: &Catalogue, model: &Model) -> ApiLimits {
        let provider = catalogue.provider(model.provider);
        ApiLimits {
            api: model.provider,
            default_model: model.id.clone(),
            sizes: model
                .sizes
                .iter()
                .map(|e| SizeRule {
                    size: e.size,
                    max_variants: e.max_takes,
                    only_models: Vec::new(),
                    max_seconds: e.max_seconds,
                })
                .collect(),
            default_size: model.default_size,
            seconds: model
                .seconds
                .rule()
                .unwrap_or(SecondsRule::OneOf(vec![model.default_seconds])),
            default_seconds: model.default_seconds,
            default_variants: model.default_takes,
            variants_per_job: provider.takes_per_job,
            prompt_min_chars: model.prompt_chars.min,
            prompt_max_chars: model.prompt_chars.max,
            max_running_jobs: provider.max_running_jobs,
            requests_per_minute: provider.requests_per_minute,
            retention_seconds: provider.retention_seconds,
            known_models: vec![model.id.clone()],
        }
    }

    /// Whether `model` is a catalogue model (or a dated snapshot of one) that cannot use
    /// `rule`'s size. Names the catalogue does not know (Azure deployment names, a
    /// gateway's own names) are given the benefit of the doubt.
    pub fn model_excluded(&self, model: &str, rule: &SizeRule) -> bool {
        if rule.only_models.is_empty() {
            return false;
        }
        // The longest id the name means (`sora-2-pro-...` is `sora-2-pro`, not `sora-2`).
        self.known_models
            .iter()
            .filter(|id| crate::catalogue::names_model(model, id))
            .max_by_key(|id| id.len())
            .is_some_and(|id| !rule.only_models.contains(id))
    }
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
        let azure = Api::AzureJobs.limits();
        let openai = Api::OpenaiVideos.limits();
        assert!(azure.seconds.allows(1) && azure.seconds.allows(20));
        assert!(!azure.seconds.allows(0) && !azure.seconds.allows(21));
        assert!(openai.seconds.allows(8) && !openai.seconds.allows(5));
        assert_eq!(openai.seconds.describe(), "4, 8 or 12");
    }

    #[test]
    fn pro_sizes_exclude_only_known_non_pro_models() {
        let l = Api::OpenaiVideos.limits();
        let pro = l.size_rule(Size::new(1024, 1792)).unwrap();
        assert_eq!(pro.only_models, ["sora-2-pro"]);
        assert!(l.model_excluded("sora-2", pro));
        assert!(l.model_excluded("sora-2-2025-10-06", pro));
        assert!(!l.model_excluded("sora-2-pro-2025-10-06", pro));
        assert!(!l.model_excluded("my-deployment", pro));
        let common = l.size_rule(Size::new(1280, 720)).unwrap();
        assert!(common.only_models.is_empty() && !l.model_excluded("sora-2", common));
    }
}
