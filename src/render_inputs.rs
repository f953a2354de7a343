//! The render inputs of one shot, normalized: the one struct that the content hash
//! (`cache_key.rs`), the request encoder (`JobRequest`), the lockfile record and `plan`'s
//! "which fields changed" all read, so a new input is added in one place.

use serde::{Deserialize, Serialize};

use crate::api::JobRequest;
use crate::catalogue::Model;
use crate::limits::{Api, Size};
use crate::shot::{Params, Shot};

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
}

impl RenderInputs {
    pub fn of(api: Api, shot: &Shot) -> RenderInputs {
        RenderInputs {
            api,
            model: shot.model.clone(),
            prompt: shot.prompt.clone(),
            size: shot.size,
            seconds: shot.seconds,
            takes: shot.variants,
            params: shot.params.clone(),
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
        }
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
