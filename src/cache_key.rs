//! The content hash of a shot's render inputs: what decides whether a video is fresh.
//!
//! The hash is sha256 over a canonical JSON serialization of a borrowed key struct with a
//! fixed field order and a scheme version. Exactly the inputs that change the rendered
//! video are in it: api, model, final prompt, width, height, seconds, variants. The shot
//! id, its position, comments, tags and the output folder are not, so renaming or
//! reordering never re-renders. Changing what goes in means bumping [`SCHEME`].

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::limits::Api;
use crate::render_inputs::RenderInputs;
use crate::shot::Shot;

/// Version of the hashing scheme; part of every hash.
pub const SCHEME: u32 = 1;

#[derive(Serialize)]
struct CacheKey<'a> {
    scheme: u32,
    api: &'a str,
    model: &'a str,
    prompt: &'a str,
    width: u32,
    height: u32,
    seconds: u32,
    variants: u32,
    /// Absent when empty, so hashes made before `params` existed stay the same.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    params: &'a crate::shot::Params,
    /// Absent when empty, as `params`: each image by its role, its bytes (a file's, or
    /// the upstream video's) and which frame; never by a path or a shot id.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    images: Vec<ImageKey<'a>>,
}

#[derive(Serialize)]
struct ImageKey<'a> {
    role: crate::catalogue::ImageRole,
    sha256: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    frame: Option<&'a str>,
}

/// `sha256:<64 hex>` of the shot's render inputs.
pub fn input_hash(api: Api, shot: &Shot) -> String {
    hash(&RenderInputs::of(api, shot))
}

/// `sha256:<64 hex>` of `inputs` (scheme [`SCHEME`]).
pub fn hash(inputs: &RenderInputs) -> String {
    let key = CacheKey {
        scheme: SCHEME,
        api: inputs.api.as_str(),
        model: &inputs.model,
        prompt: &inputs.prompt,
        width: inputs.size.width,
        height: inputs.size.height,
        seconds: inputs.seconds,
        variants: inputs.takes,
        params: &inputs.params,
        images: inputs
            .images
            .iter()
            .map(|i| ImageKey {
                role: i.role,
                sha256: &i.sha256,
                frame: i.frame.as_deref(),
            })
            .collect(),
    };
    let json =
        serde_json::to_vec(&key).expect("a struct of strings and integers always serializes");
    format!("sha256:{}", hex(&Sha256::digest(&json)))
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Size;

    fn shot(id: &str) -> Shot {
        Shot::new(
            id.into(),
            "A red fox.".into(),
            "sora".into(),
            Size::new(480, 480),
            5,
            1,
            vec!["t".into()],
        )
    }

    #[test]
    fn id_and_tags_do_not_change_the_hash() {
        let mut b = shot("b");
        b.tags.clear();
        assert_eq!(
            input_hash(Api::AzureJobs, &shot("a")),
            input_hash(Api::AzureJobs, &b)
        );
    }

    #[test]
    fn every_render_input_changes_the_hash() {
        let base = input_hash(Api::AzureJobs, &shot("a"));
        let variations: [fn(&mut Shot); 6] = [
            |s| s.prompt.push('!'),
            |s| s.model = "sora-x".into(),
            |s| s.size = Size::new(480, 854),
            |s| s.size = Size::new(854, 480),
            |s| s.seconds = 6,
            |s| s.variants = 2,
        ];
        for vary in variations {
            let mut s = shot("a");
            vary(&mut s);
            assert_ne!(input_hash(Api::AzureJobs, &s), base);
        }
        assert_ne!(input_hash(Api::OpenaiVideos, &shot("a")), base);
    }

    #[test]
    fn hash_is_stable_across_releases() {
        // Pinned: if this changes, every user's renders go stale. Bump SCHEME instead.
        assert_eq!(
            input_hash(Api::AzureJobs, &shot("a")),
            "sha256:".to_string() + &hex(&Sha256::digest(
                br#"{"scheme":1,"api":"azure-jobs","model":"sora","prompt":"A red fox.","width":480,"height":480,"seconds":5,"variants":1}"#
            ))
        );
    }
}
