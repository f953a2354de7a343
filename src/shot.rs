//! One shot, fully resolved: every default applied, every limit checked.

use crate::catalogue::{ImageFormat, ImageRole};
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
    /// The images it starts from (`image:`, `last_frame:`, `references:`), in that order.
    pub images: Vec<ShotImage>,
    /// The take chosen for the edit (`pick:`, default 1): not a render input.
    pub pick: u32,
}

/// One image a shot starts from, and where it comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShotImage {
    pub role: ImageRole,
    pub source: ImageSource,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageSource {
    /// A file inside the board, read and checked when the manifest was loaded.
    File {
        /// Relative to the manifest's folder, `/`-separated.
        path: String,
        /// Lowercase hex sha256 of its bytes (as the lockfile writes hashes of files).
        sha256: String,
        format: ImageFormat,
        width: u32,
        height: u32,
    },
    /// A frame of another shot's video (its take `take`).
    Frame(FrameRef),
}

/// `{shot: ID, take: N, frame: first | last | SECONDS}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FrameRef {
    pub shot: String,
    pub take: u32,
    pub frame: FrameAt,
}

/// Which frame of a video: its first, its last, or the one shown at a time (in
/// milliseconds, so that it hashes and compares exactly).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FrameAt {
    First,
    Last,
    Millis(u64),
}

impl FrameAt {
    /// As written in a manifest and a lockfile: `first`, `last`, `2.5`.
    pub fn label(self) -> String {
        match self {
            FrameAt::First => "first".into(),
            FrameAt::Last => "last".into(),
            FrameAt::Millis(ms) if ms % 1000 == 0 => format!("{}", ms / 1000),
            FrameAt::Millis(ms) => {
                let s = format!("{}.{:03}", ms / 1000, ms % 1000);
                s.trim_end_matches('0').to_string()
            }
        }
    }

    /// The file-name part: `first`, `last`, `2.5s`.
    pub fn file_part(self) -> String {
        match self {
            FrameAt::Millis(_) => format!("{}s", self.label()),
            _ => self.label(),
        }
    }
}

impl FrameRef {
    /// Where the extracted frame is kept, inside the output folder: from ids and numbers
    /// only (`frames/opening-take1-last.png`).
    pub fn file_name(&self) -> String {
        format!(
            "frames/{}-take{}-{}.png",
            self.shot,
            self.take,
            self.frame.file_part()
        )
    }
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
            images: Vec::new(),
            pick: 1,
        }
    }

    /// The shots whose frames this one starts from, each once, in order.
    pub fn upstream(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for image in &self.images {
            if let ImageSource::Frame(f) = &image.source
                && !out.contains(&f.shot.as_str())
            {
                out.push(&f.shot);
            }
        }
        out
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
