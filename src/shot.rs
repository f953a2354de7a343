//! One shot, fully resolved: every default applied, every limit checked.

use crate::limits::Size;

/// A shot as it will be rendered. Built only by `manifest.rs`, so its values are valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shot {
    /// Safe file-name slug: letters, digits, `-`, `_`.
    pub id: String,
    /// The final prompt sent to the service (style appended).
    pub prompt: String,
    pub model: String,
    pub size: Size,
    pub seconds: u32,
    pub variants: u32,
    pub tags: Vec<String>,
    /// The model's own inputs (`params:`), checked against its catalogue entry.
    pub params: Params,
}

/// Model-specific inputs by name: numbers, booleans and strings.
pub type Params = std::collections::BTreeMap<String, serde_json::Value>;

impl Shot {
    pub fn new(
        id: String,
        prompt: String,
        model: String,
        size: Size,
        seconds: u32,
        variants: u32,
        tags: Vec<String>,
    ) -> Shot {
        Shot {
            id,
            prompt,
            model,
            size,
            seconds,
            variants,
            tags,
            params: Params::new(),
        }
    }

    /// Video-seconds this shot asks the service to generate (all variants).
    pub fn video_seconds(&self) -> u64 {
        u64::from(self.seconds) * u64::from(self.variants)
    }

    /// The file name of variant `n` (1-based): `opening.mp4`, then `opening-2.mp4`, ...
    /// Built from the id and the number only, never from anything a server said.
    pub fn video_file_name(&self, variant: u32) -> String {
        self.file_name(variant, "mp4")
    }

    /// The thumbnail beside variant `n`'s video.
    pub fn thumbnail_file_name(&self, variant: u32, extension: &str) -> String {
        self.file_name(variant, extension)
    }

    fn file_name(&self, variant: u32, extension: &str) -> String {
        if variant <= 1 {
            format!("{}.{extension}", self.id)
        } else {
            format!("{}-{variant}.{extension}", self.id)
        }
    }
}
