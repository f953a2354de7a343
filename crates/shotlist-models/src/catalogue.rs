//! The catalogue: every video model shotlist knows, and the facts of the providers that
//! serve them, as data (`catalogue.yaml` beside this crate, read at build time).
//!
//! Per model: its provider, the provider's own model id, sizes (with takes per job),
//! durations, defaults, prompt length, price, and the source and date of every fact. Per
//! provider: the default model, whether any model name is accepted (Azure deployment
//! names, gateways), whether one job renders several takes, jobs at once, requests per
//! minute and how long outputs are kept. Nothing here does I/O beyond parsing text.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::limits::{Api, SecondsRule, Size};

/// The catalogue shipped with this build.
pub const BUILTIN_TEXT: &str = include_str!("../catalogue.yaml");

/// The format version of `catalogue.yaml` (and of `shotlist.models.yaml`).
pub const VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    pub version: u32,
    #[serde(default)]
    pub providers: Vec<ProviderFacts>,
    #[serde(default)]
    pub models: Vec<Model>,
}

/// A board's own models: `shotlist.models.yaml` beside the manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardModels {
    pub version: u32,
    pub models: Vec<Model>,
}

/// What a provider (one protocol) documents, whatever the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderFacts {
    pub api: Api,
    /// The model a shot gets when neither it nor `defaults` names one.
    pub default_model: String,
    /// Whether a model name not in the catalogue is accepted (and checked against the
    /// provider's models where it names a size only some of them take).
    pub any_model_name: bool,
    /// Whether one job renders several takes; when false, N takes are N jobs.
    pub takes_per_job: bool,
    pub max_running_jobs: usize,
    pub requests_per_minute: u32,
    /// How long a job's outputs stay downloadable, in seconds.
    pub retention_seconds: u64,
    /// Whether size and length travel as the model's own input fields (fal, Replicate:
    /// `resolution`, `aspect_ratio`, `duration`), each model entry saying which
    /// (`seconds_field`, and `fields` per size), rather than as the protocol's own.
    #[serde(default, skip_serializing_if = "is_false")]
    pub model_fields: bool,
    pub sources: Vec<Source>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One model, as one provider serves it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    /// The name a manifest uses (`model: sora-2`).
    pub id: String,
    pub provider: Api,
    /// The provider's own id for it (what goes in the request).
    pub provider_model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub sizes: Vec<SizeEntry>,
    /// Size when neither the shot nor `defaults` names one; absent: a size is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_size: Option<Size>,
    pub seconds: Seconds,
    pub default_seconds: u32,
    pub default_takes: u32,
    pub prompt_chars: CharRange,
    /// Where the provider takes the size and length as the model's own fields: the field
    /// the length goes in and how it is written (sizes carry their own `fields`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_field: Option<SecondsField>,
    /// The model's own inputs a shot may set under `params:` (seed, negative prompt, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<Param>,
    /// The images it can start from (first frame, last frame, references); absent: it
    /// takes none (text to video).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<ImageInputs>,
    /// Absent: the price is unknown (never taken as free).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Price>,
    /// Required in the shipped catalogue; optional in a board's own models.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<Source>,
}

/// One model-specific input: its name in the request, its type and range.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Param {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ParamKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// For strings: the values allowed (any when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub one_of: Vec<String>,
    /// What the provider uses when the shot sets none (documentation; never sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
    /// Whether every shot of this model must set it (an image-to-video model's image).
    #[serde(default, skip_serializing_if = "is_false")]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamKind {
    Integer,
    Number,
    Boolean,
    String,
}

impl Param {
    /// Why `value` is not one this parameter takes, if it is not.
    pub fn check(&self, value: &serde_json::Value) -> Result<(), String> {
        use serde_json::Value;
        let range = || match (self.min, self.max) {
            (Some(a), Some(b)) => format!(" from {a} to {b}"),
            (Some(a), None) => format!(" of at least {a}"),
            (None, Some(b)) => format!(" of at most {b}"),
            (None, None) => String::new(),
        };
        let in_range = |n: f64| self.min.is_none_or(|m| n >= m) && self.max.is_none_or(|m| n <= m);
        match (self.kind, value) {
            (ParamKind::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => {
                let v = n.as_f64().unwrap_or(f64::NAN);
                if in_range(v) {
                    Ok(())
                } else {
                    Err(format!("`{}` is a whole number{}", self.name, range()))
                }
            }
            (ParamKind::Number, Value::Number(n)) => {
                let v = n.as_f64().unwrap_or(f64::NAN);
                if in_range(v) {
                    Ok(())
                } else {
                    Err(format!("`{}` is a number{}", self.name, range()))
                }
            }
            (ParamKind::Boolean, Value::Bool(_)) => Ok(()),
            (ParamKind::String, Value::String(s))
                if self.one_of.is_empty() || self.one_of.contains(s) =>
            {
                Ok(())
            }
            (ParamKind::String, Value::String(_)) => Err(format!(
                "`{}` is one of: {}",
                self.name,
                self.one_of.join(", ")
            )),
            (kind, _) => Err(format!(
                "`{}` is {}{}",
                self.name,
                match kind {
                    ParamKind::Integer => "a whole number",
                    ParamKind::Number => "a number",
                    ParamKind::Boolean => "`true` or `false`",
                    ParamKind::String => "a string",
                },
                if matches!(kind, ParamKind::Integer | ParamKind::Number) {
                    range()
                } else {
                    String::new()
                }
            )),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SizeEntry {
    pub size: Size,
    /// Most takes at this size: in one job where the provider renders several per job,
    /// else in one shot (one job each).
    pub max_takes: u32,
    /// The longest length at this size, where it is shorter than the model's longest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_seconds: Option<u32>,
    /// How this size is asked for where the model's own fields carry it (providers with
    /// `model_fields`): `{resolution: 720p, aspect_ratio: "16:9"}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
}

/// The images a model takes, how they travel and what it accepts of them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageInputs {
    /// The video's first frame (image to video).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_frame: Option<ImageSlot>,
    /// The video's last frame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_frame: Option<ImageSlot>,
    /// Images of a character, a place or a style the video keeps to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub references: Option<ReferenceSlot>,
    /// Whether an image must have exactly the video's size (else any size is fitted).
    #[serde(default, skip_serializing_if = "is_false")]
    pub match_size: bool,
    /// Whether references and frames exclude each other.
    #[serde(default, skip_serializing_if = "is_false")]
    pub references_alone: bool,
    /// The largest image accepted, in bytes.
    pub max_bytes: u64,
    /// The image types accepted.
    pub formats: Vec<ImageFormat>,
    /// Frames per second of the video, where the protocol places an image at a frame
    /// index (Azure's `inpaint_items`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_rate: Option<u32>,
}

/// Where one frame image goes: the model's own field (providers with `model_fields`),
/// or the protocol's own place for it where `field` is absent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSlot {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Whether every shot of this model must give it (an image-to-video model's image).
    #[serde(default, skip_serializing_if = "is_false")]
    pub required: bool,
}

/// Where reference images go and how many the model takes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceSlot {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub max: u32,
}

/// An image type, as sniffed from its bytes (never from a file name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageFormat {
    Png,
    Jpeg,
    Webp,
}

impl ImageFormat {
    pub const ALL: [ImageFormat; 3] = [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::Webp];

    pub fn mime(self) -> &'static str {
        match self {
            ImageFormat::Png => "image/png",
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Webp => "image/webp",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Jpeg => "jpg",
            ImageFormat::Webp => "webp",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ImageFormat::Png => "PNG",
            ImageFormat::Jpeg => "JPEG",
            ImageFormat::Webp => "WebP",
        }
    }

    /// The type of an image from its first bytes (its magic number).
    pub fn sniff(bytes: &[u8]) -> Option<ImageFormat> {
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(ImageFormat::Png)
        } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(ImageFormat::Jpeg)
        } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            Some(ImageFormat::Webp)
        } else {
            None
        }
    }
}

/// Which of a model's image inputs an image is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageRole {
    FirstFrame,
    LastFrame,
    Reference,
}

impl ImageRole {
    /// The manifest's key for it.
    pub fn key(self) -> &'static str {
        match self {
            ImageRole::FirstFrame => "image",
            ImageRole::LastFrame => "last_frame",
            ImageRole::Reference => "references",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            ImageRole::FirstFrame => "first frame",
            ImageRole::LastFrame => "last frame",
            ImageRole::Reference => "reference images",
        }
    }
}

impl ImageInputs {
    /// The model's own field for an image of `role`, if it has one.
    pub fn field(&self, role: ImageRole) -> Option<&str> {
        match role {
            ImageRole::FirstFrame => self.first_frame.as_ref()?.field.as_deref(),
            ImageRole::LastFrame => self.last_frame.as_ref()?.field.as_deref(),
            ImageRole::Reference => self.references.as_ref()?.field.as_deref(),
        }
    }

    /// Whether the model takes an image of `role` at all.
    pub fn takes(&self, role: ImageRole) -> bool {
        match role {
            ImageRole::FirstFrame => self.first_frame.is_some(),
            ImageRole::LastFrame => self.last_frame.is_some(),
            ImageRole::Reference => self.references.is_some(),
        }
    }
}

/// The model's own field for the length, and how it is written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecondsField {
    pub name: String,
    /// `integer` (`5`) or `string` (`"5"`, with `suffix`: `"8s"`).
    #[serde(rename = "as")]
    pub format: FieldFormat,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub suffix: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldFormat {
    Integer,
    String,
}

impl SecondsField {
    pub fn encode(&self, seconds: u32) -> serde_json::Value {
        match self.format {
            FieldFormat::Integer => serde_json::Value::from(seconds),
            FieldFormat::String => serde_json::Value::from(format!("{seconds}{}", self.suffix)),
        }
    }

    /// The length a request's field asks for (`"8s"`, `"8"`, `8`), if it is one.
    pub fn decode(&self, value: &serde_json::Value) -> Option<u32> {
        match (self.format, value) {
            (FieldFormat::Integer, serde_json::Value::Number(n)) => {
                n.as_u64().and_then(|n| u32::try_from(n).ok())
            }
            (FieldFormat::String, serde_json::Value::String(s)) => {
                s.strip_suffix(self.suffix.as_str())?.parse().ok()
            }
            _ => None,
        }
    }
}

impl Model {
    /// The size entry for `size`, if the model takes it.
    pub fn size_entry(&self, size: Size) -> Option<&SizeEntry> {
        self.sizes.iter().find(|e| e.size == size)
    }

    /// The model's own input fields that ask for `size` and `seconds`, where its provider
    /// takes them so (empty otherwise).
    pub fn wire_fields(
        &self,
        size: Size,
        seconds: u32,
    ) -> serde_json::Map<String, serde_json::Value> {
        let mut out = serde_json::Map::new();
        if let Some(entry) = self.size_entry(size) {
            for (k, v) in &entry.fields {
                out.insert(k.clone(), serde_json::Value::from(v.as_str()));
            }
        }
        if let Some(field) = &self.seconds_field {
            out.insert(field.name.clone(), field.encode(seconds));
        }
        out
    }

    /// What a request's input asks for, read back through the model's fields (the
    /// emulator's side of [`Model::wire_fields`]): the size whose fields all match (the
    /// default size when a field is left out and the default matches the rest), and the
    /// length (the default when the field is absent). `Err` names the field at fault.
    pub fn read_wire_fields(
        &self,
        input: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(Size, u32), String> {
        let matches = |e: &SizeEntry, strict: bool| {
            e.fields.iter().all(|(k, v)| match input.get(k) {
                Some(serde_json::Value::String(s)) => s == v,
                None => !strict,
                Some(_) => false,
            })
        };
        let size = self
            .sizes
            .iter()
            .find(|e| matches(e, true))
            .or_else(|| {
                let default = self.default_size.and_then(|s| self.size_entry(s))?;
                matches(default, false).then_some(default)
            })
            .map(|e| e.size)
            .ok_or_else(|| {
                let names: Vec<&str> = self
                    .sizes
                    .iter()
                    .flat_map(|e| e.fields.keys().map(String::as_str))
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                format!(
                    "no size of `{}` is asked for by {}",
                    self.id,
                    names.join(", ")
                )
            })?;
        let seconds = match &self.seconds_field {
            None => self.default_seconds,
            Some(field) => match input.get(&field.name) {
                None => self.default_seconds,
                Some(v) => field.decode(v).ok_or_else(|| {
                    format!("`{}` is not a length `{}` takes", field.name, self.id)
                })?,
            },
        };
        Ok((size, seconds))
    }
}

/// Accepted durations: `{min, max}` whole seconds, or `{one_of: [...]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seconds {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_of: Option<Vec<u32>>,
}

impl Seconds {
    /// The rule, or why this entry is not one.
    pub fn rule(&self) -> Result<SecondsRule, String> {
        match (self.min, self.max, &self.one_of) {
            (Some(min), Some(max), None) if min >= 1 && min <= max => {
                Ok(SecondsRule::Range { min, max })
            }
            (None, None, Some(values)) if !values.is_empty() && !values.contains(&0) => {
                Ok(SecondsRule::OneOf(values.clone()))
            }
            _ => Err("`seconds` is `{min, max}` (1 <= min <= max) or `{one_of: [...]}`".into()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CharRange {
    pub min: usize,
    pub max: usize,
}

/// Price per second of generated video (each take counts).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// ISO 4217 code, e.g. `USD`.
    pub currency: String,
    pub per_second: f64,
    /// Sizes billed at another rate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by_size: Vec<SizePrice>,
}

/// Another rate: at these sizes (any, when empty) and with these params (any, when
/// empty; a param the shot leaves out counts as its default).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SizePrice {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sizes: Vec<Size>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, serde_json::Value>,
    pub per_second: f64,
}

impl Price {
    /// The rate for one second of video at `size`, whatever the params.
    pub fn per_second_at(&self, size: Size) -> f64 {
        self.by_size
            .iter()
            .find(|p| p.params.is_empty() && p.sizes.contains(&size))
            .map_or(self.per_second, |p| p.per_second)
    }
}

impl Model {
    /// What one second of one take costs at `size` with `params` (the shot's own; a
    /// param left out counts as the model's default), in the price's currency. `None`:
    /// the price is unknown.
    pub fn price_per_second(
        &self,
        size: Size,
        params: &BTreeMap<String, serde_json::Value>,
    ) -> Option<(f64, &str)> {
        let price = self.price.as_ref()?;
        let value = |name: &str| {
            params.get(name).or_else(|| {
                self.params
                    .iter()
                    .find(|p| p.name == name)
                    .and_then(|p| p.default.as_ref())
            })
        };
        let rate = price
            .by_size
            .iter()
            .find(|p| {
                (p.sizes.is_empty() || p.sizes.contains(&size))
                    && p.params.iter().all(|(k, v)| value(k) == Some(v))
            })
            .map_or(price.per_second, |p| p.per_second);
        Some((rate, price.currency.as_str()))
    }
}

/// Where facts come from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Which fields of the entry this source backs.
    pub facts: Vec<String>,
    pub url: String,
    /// When the fact was read, `YYYY-MM-DD`.
    pub date: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A catalogue that does not hold together, by entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogueProblem {
    /// `models[3]` (`sora-2`), `providers[0]`.
    pub entry: String,
    /// The field at fault, when one is.
    pub field: Option<&'static str>,
    pub message: String,
}

impl fmt::Display for CatalogueProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.entry, self.message)
    }
}

/// Facts every model entry must back with a source.
const MODEL_FACTS: &[&str] = &["sizes", "seconds", "prompt_chars", "price"];
/// Facts every provider entry must back with a source.
const PROVIDER_FACTS: &[&str] = &[
    "max_running_jobs",
    "requests_per_minute",
    "retention_seconds",
];

impl Catalogue {
    /// The catalogue shipped with this build, parsed once.
    pub fn builtin() -> &'static Catalogue {
        static BUILTIN: OnceLock<Catalogue> = OnceLock::new();
        BUILTIN.get_or_init(|| {
            let c: Catalogue =
                serde_saphyr::from_str(BUILTIN_TEXT).expect("the built-in catalogue parses");
            let problems = c.problems();
            assert!(
                problems.is_empty(),
                "the built-in catalogue does not hold together: {problems:?}"
            );
            c
        })
    }

    pub fn provider(&self, api: Api) -> &ProviderFacts {
        self.providers
            .iter()
            .find(|p| p.api == api)
            .expect("every API has a provider entry (checked by `problems`)")
    }

    /// The model a manifest's `model:` names on `api`: its catalogue id, or a dated
    /// snapshot of one (`sora-2-pro-2025-10-06`). `None` for any other name.
    pub fn find(&self, api: Api, name: &str) -> Option<&Model> {
        let by_id = self
            .models
            .iter()
            .filter(|m| m.provider == api)
            .filter(|m| names_model(name, &m.id))
            .max_by_key(|m| m.id.len());
        // The provider's own id names it too (`fal-ai/veo3.1`, `google/veo-3.1`), where
        // that is not already a catalogue id.
        // A pinned version (`owner/name:VERSION` on Replicate) is that model too.
        let base = name.split_once(':').map_or(name, |(base, _)| base);
        by_id.or_else(|| {
            self.models
                .iter()
                .find(|m| m.provider == api && m.provider_model == base && m.id != name)
        })
    }

    pub fn models_of(&self, api: Api) -> impl Iterator<Item = &Model> {
        self.models.iter().filter(move |m| m.provider == api)
    }

    /// The provider's default model's entry.
    pub fn default_model(&self, api: Api) -> &Model {
        let name = &self.provider(api).default_model;
        self.find(api, name)
            .expect("every default model has an entry (checked by `problems`)")
    }

    /// This catalogue with a board's own models (`shotlist.models.yaml`): an entry with
    /// the id and provider of a known model replaces it, any other is added.
    pub fn with_models(&self, extra: &[Model]) -> Catalogue {
        let mut merged = self.clone();
        for m in extra {
            match merged
                .models
                .iter_mut()
                .find(|o| o.id == m.id && o.provider == m.provider)
            {
                Some(slot) => *slot = m.clone(),
                None => merged.models.push(m.clone()),
            }
        }
        merged
    }

    /// Everything that keeps this catalogue from being used: unknown providers, models
    /// without a source for a fact, defaults outside the model's own limits, ...
    pub fn problems(&self) -> Vec<CatalogueProblem> {
        let mut out = self.provider_problems();
        for (i, m) in self.models.iter().enumerate() {
            out.extend(self.model_problems(i, m, true));
        }
        out
    }

    fn provider_problems(&self) -> Vec<CatalogueProblem> {
        let mut out = Vec::new();
        let mut problem = |entry: String, message: String| {
            out.push(CatalogueProblem {
                entry,
                field: None,
                message,
            })
        };
        if self.version != VERSION {
            problem(
                "version".into(),
                format!("version {} is not {VERSION}", self.version),
            );
        }
        for api in Api::ALL {
            if !self.providers.iter().any(|p| p.api == api) {
                problem("providers".into(), format!("no entry for `{api}`"));
            }
        }
        for (i, p) in self.providers.iter().enumerate() {
            let entry = format!("providers[{i}] (`{}`)", p.api);
            if self.providers[..i].iter().any(|q| q.api == p.api) {
                problem(entry.clone(), "listed twice".into());
            }
            if !self.models_of(p.api).any(|m| m.id == p.default_model) {
                problem(
                    entry.clone(),
                    format!("default model `{}` has no entry", p.default_model),
                );
            }
            if p.max_running_jobs == 0 || p.requests_per_minute == 0 {
                problem(
                    entry.clone(),
                    "jobs at once and requests per minute are at least 1".into(),
                );
            }
            for fact in PROVIDER_FACTS {
                if !p.sources.iter().any(|s| s.facts.iter().any(|f| f == fact)) {
                    problem(entry.clone(), format!("no source for `{fact}`"));
                }
            }
            check_sources(&p.sources, &entry, &mut problem);
        }
        out
    }

    /// What is wrong with model `i` (`m`), as an entry of this catalogue. A board's own
    /// models need no sources (`require_sources: false`); the shipped ones do.
    pub fn model_problems(
        &self,
        i: usize,
        m: &Model,
        require_sources: bool,
    ) -> Vec<CatalogueProblem> {
        let mut out = Vec::new();
        let mut problem = |field: &'static str, message: String| {
            out.push(CatalogueProblem {
                entry: format!("models[{i}] (`{}`)", m.id),
                field: Some(field),
                message,
            })
        };
        if !is_model_id(&m.id) {
            problem("id", "an id is 1-128 letters, digits and `-._/:`".into());
        }
        if self.models[..i.min(self.models.len())]
            .iter()
            .any(|o| o.id == m.id && o.provider == m.provider)
        {
            problem("id", format!("listed twice for `{}`", m.provider));
        }
        if m.sizes.is_empty() {
            problem("sizes", "no sizes".into());
        }
        if m.sizes.iter().any(|s| s.max_takes == 0) {
            problem("sizes", "`max_takes` is at least 1".into());
        }
        if let Some(size) = m.default_size
            && !m.sizes.iter().any(|s| s.size == size)
        {
            problem(
                "default_size",
                format!("default size {size} is not one of its sizes"),
            );
        }
        match m.seconds.rule() {
            Ok(rule) if !rule.allows(m.default_seconds) => problem(
                "default_seconds",
                format!("default of {} seconds is not allowed", m.default_seconds),
            ),
            Ok(_) => {}
            Err(e) => problem("seconds", e),
        }
        for (j, p) in m.params.iter().enumerate() {
            if m.params[..j].iter().any(|q| q.name == p.name) {
                problem("params", format!("parameter `{}` is listed twice", p.name));
            }
            if p.min.zip(p.max).is_some_and(|(a, b)| a > b) {
                problem(
                    "params",
                    format!("parameter `{}` has `min` above `max`", p.name),
                );
            }
            if p.name.is_empty()
                || !p
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                problem(
                    "params",
                    format!("parameter name `{}` is not letters, digits and `_`", p.name),
                );
            }
        }
        if m.default_takes == 0 {
            problem("default_takes", "`default_takes` is at least 1".into());
        }
        let model_fields = self
            .providers
            .iter()
            .find(|p| p.api == m.provider)
            .is_some_and(|p| p.model_fields);
        if model_fields {
            if m.seconds_field.is_none() {
                problem(
                    "seconds_field",
                    format!(
                        "`{}` takes the length as the model's own field: name it in `seconds_field`",
                        m.provider
                    ),
                );
            }
            for (j, e) in m.sizes.iter().enumerate() {
                if m.sizes.len() > 1 && e.fields.is_empty() {
                    problem(
                        "sizes",
                        format!("size {} has no `fields` saying how it is asked for", e.size),
                    );
                }
                if m.sizes[..j].iter().any(|o| o.fields == e.fields) && !e.fields.is_empty() {
                    problem(
                        "sizes",
                        format!(
                            "size {} is asked for with the same `fields` as another",
                            e.size
                        ),
                    );
                }
            }
        } else if m.seconds_field.is_some() || m.sizes.iter().any(|e| !e.fields.is_empty()) {
            problem(
                "sizes",
                format!(
                    "`{}` sends size and length as its own fields: `fields` and `seconds_field` are for providers that take the model's",
                    m.provider
                ),
            );
        }
        if let Ok(rule) = m.seconds.rule() {
            for e in &m.sizes {
                if let Some(max) = e.max_seconds
                    && !(1..=u32::MAX).contains(&max)
                {
                    problem(
                        "sizes",
                        format!("size {}: `max_seconds` is at least 1", e.size),
                    );
                } else if let Some(max) = e.max_seconds
                    && !(match &rule {
                        SecondsRule::Range { min, .. } => *min <= max,
                        SecondsRule::OneOf(v) => v.iter().any(|s| *s <= max),
                    })
                {
                    problem(
                        "sizes",
                        format!(
                            "size {}: no length of the model is at most {max} seconds",
                            e.size
                        ),
                    );
                }
            }
        }
        if m.prompt_chars.min > m.prompt_chars.max || m.prompt_chars.max == 0 {
            problem(
                "prompt_chars",
                "`prompt_chars` is `{min, max}`, min <= max".into(),
            );
        }
        if let Some(price) = &m.price {
            let rates =
                std::iter::once(price.per_second).chain(price.by_size.iter().map(|p| p.per_second));
            if rates.into_iter().any(|r| !r.is_finite() || r < 0.0) {
                problem("price", "a price is a number of at least 0".into());
            }
            if price.currency.len() != 3 || !price.currency.bytes().all(|b| b.is_ascii_uppercase())
            {
                problem(
                    "price",
                    "`currency` is an ISO 4217 code such as `USD`".into(),
                );
            }
        }
        if let Some(images) = &m.images {
            if images.formats.is_empty() {
                problem("images", "`formats` names at least one image type".into());
            }
            if images.max_bytes == 0 {
                problem("images", "`max_bytes` is at least 1".into());
            }
            if images.references.as_ref().is_some_and(|r| r.max == 0) {
                problem("images", "`references.max` is at least 1".into());
            }
            let roles = [
                ImageRole::FirstFrame,
                ImageRole::LastFrame,
                ImageRole::Reference,
            ];
            if !roles.iter().any(|r| images.takes(*r)) {
                problem("images", "takes no image: leave `images` out".into());
            }
            for role in roles {
                if let Some(field) = images.field(role)
                    && m.params.iter().any(|p| p.name == field)
                {
                    problem(
                        "images",
                        format!("`{field}` is both an image field and a parameter"),
                    );
                }
            }
            if require_sources
                && !m
                    .sources
                    .iter()
                    .any(|s| s.facts.iter().any(|f| f == "images"))
            {
                problem("sources", "no source for `images`".into());
            }
        }
        if require_sources {
            for fact in MODEL_FACTS {
                if !m.sources.iter().any(|s| s.facts.iter().any(|f| f == fact)) {
                    problem("sources", format!("no source for `{fact}`"));
                }
            }
        }
        for s in &m.sources {
            if !is_date(&s.date) {
                problem(
                    "sources",
                    format!("source date `{}` is not YYYY-MM-DD", s.date),
                );
            }
        }
        out
    }
}

fn check_sources(sources: &[Source], entry: &str, problem: &mut impl FnMut(String, String)) {
    for s in sources {
        if !is_date(&s.date) {
            problem(
                entry.to_owned(),
                format!("source date `{}` is not YYYY-MM-DD", s.date),
            );
        }
        if s.url.trim().is_empty() {
            problem(entry.to_owned(), "a source has no url".into());
        }
    }
}

/// Whether a manifest's `model: name` means catalogue model `id`: the id itself, or a
/// dated snapshot of it (`sora-2-pro-2025-10-06`).
pub fn names_model(name: &str, id: &str) -> bool {
    name == id
        || name
            .strip_prefix(id)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(is_date)
}

/// `YYYY-MM-DD`, by shape.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// A model id as manifests write it (provider ids like `fal-ai/veo3.1` included).
pub fn is_model_id(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._/:".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_catalogue_holds_together_and_backs_every_fact() {
        let c = Catalogue::builtin();
        assert!(c.problems().is_empty());
        for api in Api::ALL {
            let m = c.default_model(api);
            assert_eq!(m.provider, api);
        }
    }

    #[test]
    fn dated_snapshots_find_their_model_and_other_names_none() {
        let c = Catalogue::builtin();
        let id = |name| c.find(Api::OpenaiVideos, name).map(|m| m.id.as_str());
        assert_eq!(id("sora-2"), Some("sora-2"));
        assert_eq!(id("sora-2-2025-10-06"), Some("sora-2"));
        assert_eq!(id("sora-2-pro-2025-10-06"), Some("sora-2-pro"));
        assert_eq!(id("sora-2-pro"), Some("sora-2-pro"));
        assert_eq!(id("sora-2-preview"), None);
        assert_eq!(id("my-gateway-model"), None);
        assert_eq!(c.find(Api::AzureJobs, "sora-2").map(|m| &m.id), None);
    }

    #[test]
    fn a_broken_entry_is_named_with_what_is_wrong() {
        let text = BUILTIN_TEXT.replace("default_seconds: 4\n", "default_seconds: 5\n");
        let c: Catalogue = serde_saphyr::from_str(&text).unwrap();
        let problems = c.problems();
        assert!(
            problems
                .iter()
                .any(|p| p.entry.contains("sora-2") && p.message.contains("5 seconds")),
            "{problems:?}"
        );
    }

    #[test]
    fn model_fields_ask_for_each_size_and_length_and_read_back() {
        let c = Catalogue::builtin();
        let veo = c.find(Api::Fal, "veo-3.1").unwrap();
        assert_eq!(
            serde_json::Value::Object(veo.wire_fields(Size::new(1280, 720), 8)),
            serde_json::json!({"resolution": "720p", "aspect_ratio": "16:9", "duration": "8s"})
        );
        assert_eq!(
            c.find(Api::Fal, "fal-ai/veo3.1").map(|m| &m.id),
            Some(&veo.id)
        );
        let mut checked = 0;
        for m in c
            .models
            .iter()
            .filter(|m| c.provider(m.provider).model_fields)
        {
            let rule = m.seconds.rule().unwrap();
            for e in &m.sizes {
                for s in [1, 4, 5, 6, 8, 10, 15]
                    .into_iter()
                    .filter(|s| rule.allows(*s))
                {
                    let fields = m.wire_fields(e.size, s);
                    assert_eq!(m.read_wire_fields(&fields), Ok((e.size, s)), "{}", m.id);
                    checked += 1;
                }
            }
            // What the provider defaults to when a field is left out.
            let default = m.default_size.unwrap();
            let mut input = m.wire_fields(default, m.default_seconds);
            input.retain(|k, _| !m.size_entry(default).unwrap().fields.contains_key(k));
            assert_eq!(m.read_wire_fields(&input), Ok((default, m.default_seconds)));
        }
        assert!(checked > 100, "{checked}");
        assert!(c.models_of(Api::Fal).count() >= 5 && c.models_of(Api::Replicate).count() >= 5);
    }

    #[test]
    fn prices_by_size() {
        let c = Catalogue::builtin();
        let pro = c.find(Api::OpenaiVideos, "sora-2-pro").unwrap();
        let price = pro.price.as_ref().unwrap();
        assert_eq!(price.per_second_at(Size::new(1280, 720)), 0.30);
        assert_eq!(price.per_second_at(Size::new(1792, 1024)), 0.50);
        assert!(c.find(Api::AzureJobs, "sora").unwrap().price.is_none());
    }
}
