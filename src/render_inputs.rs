//! The render inputs of one shot, normalized: the one struct that the content hash
//! (`cache_key.rs`), the request encoder (`JobRequest`), the lockfile record and `plan`'s
//! "which fields changed" all read, so a new input is added in one place.

use serde::{Deserialize, Serialize};

use crate::api::JobRequest;
use crate::catalogue::{ImageRole, Model};
use crate::limits::{Api, Size};
use crate::shot::{FrameRef, ImageSource, Params, Shot};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenderInputs {
    pub api: Api,
    /// The model as the manifest names it (on Azure, the deployment name).
    pub model: String,
    /// The final prompt sent (trimmed, style appended).
    pub prompt: String,
    pub size: Size,
    pub seconds: u32,
    /// Takes (variants) of the shot.
    pub takes: u32,
    /// The model's own inputs (`params:`).
    #[serde(default, skip_serializing_if = "Params::is_empty")]
    pub params: Params,
    /// The images it starts from: a file's sha256, or the sha256 of the upstream video a
    /// frame is taken from (so re-rendering that shot changes this one's inputs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<InputImage>,
}

/// One input image as the lockfile records it and the hash reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputImage {
    pub role: ImageRole,
    /// A file of the board (relative to the manifest), not hashed: its bytes are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// A frame of this shot's video, not hashed: the video's bytes are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shot: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub take: Option<u32>,
    /// `first`, `last` or seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<String>,
    /// Lowercase hex sha256 of the file, or of the video the frame is taken from.
    pub sha256: String,
}

impl RenderInputs {
    /// The inputs of a shot that starts from no other shot's frame (tests, mostly); see
    /// [`RenderInputs::resolve`].
    pub fn of(api: Api, shot: &Shot) -> RenderInputs {
        Self::resolve(api, shot, |_| None).unwrap_or_else(|_| Self::build(api, shot, Vec::new()))
    }

    /// The inputs of `shot`, with each frame of another shot identified by that shot's
    /// video, as `video` says it is now (the hex sha256 of take `take`'s file). `Err`:
    /// the first frame whose video is not there (the upstream shot is not rendered).
    pub fn resolve(
        api: Api,
        shot: &Shot,
        video: impl Fn(&FrameRef) -> Option<String>,
    ) -> Result<RenderInputs, FrameRef> {
        let mut images = Vec::with_capacity(shot.images.len());
        for image in &shot.images {
            images.push(match &image.source {
                ImageSource::File { path, sha256, .. } => InputImage {
                    role: image.role,
                    file: Some(path.clone()),
                    shot: None,
                    take: None,
                    frame: None,
                    sha256: sha256.clone(),
                },
                ImageSource::Frame(f) => InputImage {
                    role: image.role,
                    file: None,
                    shot: Some(f.shot.clone()),
                    take: Some(f.take),
                    frame: Some(f.frame.label()),
                    sha256: video(f).ok_or_else(|| f.clone())?,
                },
            });
        }
        Ok(Self::build(api, shot, images))
    }

    fn build(api: Api, shot: &Shot, images: Vec<InputImage>) -> RenderInputs {
        RenderInputs {
            api,
            model: shot.model.clone(),
            prompt: shot.prompt.clone(),
            size: shot.size,
            seconds: shot.seconds,
            takes: shot.variants,
            params: shot.params.clone(),
            images,
        }
    }

    /// `sha256:<64 hex>`: the content hash (see `cache_key.rs`).
    pub fn hash(&self) -> String {
        crate::cache_key::hash(self)
    }

    /// The request of one job: every take in it where the provider renders several per
    /// job, else one. `entry` is the model's catalogue entry, when it has one: the
    /// request names the model by the provider's own id, and carries the size and length
    /// as the model's fields where the provider takes them so.
    pub fn job_request(&self, takes_per_job: bool, entry: Option<&Model>) -> JobRequest {
        JobRequest {
            prompt: self.prompt.clone(),
            model: match entry {
                // A pinned version is sent as written (`google/veo-3.1:VERSION`).
                Some(m) if self.model.starts_with(&format!("{}:", m.provider_model)) => {
                    self.model.clone()
                }
                Some(m) => m.provider_model.clone(),
                None => self.model.clone(),
            },
            // Empty for models whose protocol has fields of its own (the catalogue
            // allows `fields` and `seconds_field` only where the provider takes them).
            fields: entry.map_or_else(serde_json::Map::new, |m| {
                m.wire_fields(self.size, self.seconds)
            }),
            size: self.size,
            seconds: self.seconds,
            variants: if takes_per_job { self.takes } else { 1 },
            params: self.params.clone(),
            images: Vec::new(),
        }
    }

    /// What differs from `recorded`, in words, in a fixed order: the names of the inputs,
    /// and "upstream `ID` changed" for a frame whose shot's video changed.
    pub fn changes_from(&self, recorded: &RenderInputs) -> Vec<String> {
        let mut out: Vec<String> = self
            .changed_from(recorded)
            .into_iter()
            .filter(|f| *f != "images")
            .map(str::to_owned)
            .collect();
        if self.images != recorded.images {
            let same_source = |a: &InputImage, b: &InputImage| {
                a.role == b.role && a.shot == b.shot && a.take == b.take && a.frame == b.frame
            };
            let upstream: Vec<&InputImage> = self
                .images
                .iter()
                .filter(|a| {
                    a.shot.is_some()
                        && recorded
                            .images
                            .iter()
                            .any(|b| same_source(a, b) && a.sha256 != b.sha256)
                })
                .collect();
            let sources_differ =
                self.images.len() != recorded.images.len()
                    || self.images.iter().zip(&recorded.images).any(|(a, b)| {
                        !same_source(a, b) || (a.shot.is_none() && a.sha256 != b.sha256)
                    });
            for a in &upstream {
                let line = format!("upstream `{}` changed", a.shot.as_deref().unwrap_or(""));
                if !out.contains(&line) {
                    out.push(line);
                }
            }
            if sources_differ || upstream.is_empty() {
                out.push("images".into());
            }
        }
        out
    }

    /// The names of the inputs that differ from `recorded`, in a fixed order.
    pub fn changed_from(&self, recorded: &RenderInputs) -> Vec<&'static str> {
        let mut fields = Vec::new();
        if self.api != recorded.api {
            fields.push("api");
        }
        if self.model != recorded.model {
            fields.push("model");
        }
        if self.prompt != recorded.prompt {
            fields.push("prompt");
        }
        if self.size != recorded.size {
            fields.push("size");
        }
        if self.seconds != recorded.seconds {
            fields.push("seconds");
        }
        if self.takes != recorded.takes {
            fields.push("variants");
        }
        if self.params != recorded.params {
            fields.push("params");
        }
        if self.images != recorded.images {
            fields.push("images");
        }
        fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_named_and_the_hash_follows_them() {
        let shot = Shot::new(
            "a".into(),
            "A fox.".into(),
            "sora".into(),
            Size::new(480, 480),
            5,
            2,
            vec!["t".into()],
        );
        let a = RenderInputs::of(Api::AzureJobs, &shot);
        let mut b = a.clone();
        assert!(a.changed_from(&b).is_empty());
        assert_eq!(a.hash(), b.hash());
        b.prompt = "A cat.".into();
        b.seconds = 6;
        assert_eq!(a.changed_from(&b), ["prompt", "seconds"]);
        assert_ne!(a.hash(), b.hash());
        let mut c = a.clone();
        c.params.insert("seed".into(), serde_json::json!(42));
        assert_eq!(c.changed_from(&a), ["params"]);
        assert_ne!(c.hash(), a.hash());
        assert_eq!(c.job_request(true, None).params["seed"], 42);
        assert_eq!(a.job_request(true, None).variants, 2);
        assert_eq!(a.job_request(false, None).variants, 1);
    }
}
