//! Input images as the services take them: a data URI or a file part, checked against
//! the model's catalogue `images` (type from the bytes, size from the header, the byte
//! limit, the video's size where the model needs it), and recorded in the stats by the
//! sha256 of the bytes received, so a client test can prove which image a job got.
//! The bytes themselves are never logged.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shotlist_models::catalogue::{ImageFormat, ImageInputs, ImageRole};
use shotlist_models::limits::Size;

use super::reference::image_size;

/// One input image a job was created with, as the stats show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputImage {
    /// `first_frame`, `last_frame` or `reference`.
    pub role: String,
    /// Lowercase hex sha256 of the image's bytes as received (after base64 decoding).
    pub sha256: String,
    /// `png`, `jpeg` or `webp`.
    pub format: String,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
    /// The bytes, for the placeholder's inset (never shown in the stats).
    #[serde(skip)]
    pub data: Option<std::sync::Arc<Vec<u8>>>,
}

/// The first image of a job (its first frame, else its last, else a reference),
/// decoded for the slate's inset; `None` when there is none or it cannot be decoded.
pub fn inset(images: &[InputImage]) -> Option<crate::video::Inset> {
    let order = ["first_frame", "last_frame", "reference"];
    let image = order
        .iter()
        .find_map(|role| images.iter().find(|i| i.role == *role))?;
    let decoded = image::load_from_memory(image.data.as_deref()?)
        .ok()?
        .to_rgb8();
    Some(crate::video::Inset {
        width: decoded.width(),
        height: decoded.height(),
        rgb: decoded.into_raw(),
        label: image.role.replace('_', " "),
    })
}

fn role_name(role: ImageRole) -> &'static str {
    match role {
        ImageRole::FirstFrame => "first_frame",
        ImageRole::LastFrame => "last_frame",
        ImageRole::Reference => "reference",
    }
}

/// Checks one image's bytes against the model's rules; `Err` is the service's message.
pub fn check(
    role: ImageRole,
    bytes: &[u8],
    rules: &ImageInputs,
    video: Option<Size>,
) -> Result<InputImage, String> {
    let what = role.describe();
    let Some(format) = ImageFormat::sniff(bytes) else {
        return Err(format!(
            "the {what} is not an image of a supported type ({})",
            names(rules)
        ));
    };
    if !rules.formats.contains(&format) {
        return Err(format!(
            "the {what} is {}; supported types: {}",
            format.name(),
            names(rules)
        ));
    }
    if bytes.len() as u64 > rules.max_bytes {
        return Err(format!(
            "the {what} is {} bytes; the largest accepted is {} bytes",
            bytes.len(),
            rules.max_bytes
        ));
    }
    let Some((width, height)) = image_size(bytes) else {
        return Err(format!("the {what} could not be read as {}", format.name()));
    };
    if let Some(video) = video.filter(|_| rules.match_size)
        && (width, height) != (video.width, video.height)
    {
        return Err(format!(
            "the {what} must match the requested width and height: the image is {width}x{height}, the video is {video}"
        ));
    }
    Ok(InputImage {
        role: role_name(role).to_owned(),
        sha256: Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        format: format!("{format:?}").to_lowercase(),
        width,
        height,
        bytes: bytes.len() as u64,
        data: Some(std::sync::Arc::new(bytes.to_vec())),
    })
}

fn names(rules: &ImageInputs) -> String {
    rules
        .formats
        .iter()
        .map(|f| f.mime())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The bytes of a `data:<mime>;base64,...` URI. An `https:` URL is refused: the
/// emulator reaches no network, and says so as a service says it could not fetch it.
pub fn data_uri_bytes(uri: &str) -> Result<Vec<u8>, String> {
    if uri.starts_with("https://") || uri.starts_with("http://") {
        return Err(format!(
            "could not download the file at `{}`: the emulator reaches no network; send the image as a data URI",
            uri.split('?').next().unwrap_or(uri)
        ));
    }
    let Some(rest) = uri.strip_prefix("data:") else {
        return Err("expected a data URI (`data:image/png;base64,...`) or an https URL".into());
    };
    let Some((_, payload)) = rest.split_once(";base64,") else {
        return Err("a data URI must be base64 (`data:image/png;base64,...`)".into());
    };
    base64::engine::general_purpose::STANDARD
        .decode(payload.trim())
        .map_err(|e| format!("the data URI is not valid base64: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> ImageInputs {
        shotlist_models::catalogue::Catalogue::builtin()
            .find(shotlist_models::limits::Api::OpenaiVideos, "sora-2")
            .unwrap()
            .images
            .clone()
            .unwrap()
    }

    /// A 1x1 PNG header claiming `w`x`h`.
    fn png(w: u32, h: u32) -> Vec<u8> {
        let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        b.extend(w.to_be_bytes());
        b.extend(h.to_be_bytes());
        b.extend([8, 2, 0, 0, 0, 0, 0, 0, 0]);
        b
    }

    #[test]
    fn images_are_checked_and_recorded_by_their_hash() {
        let ok = check(
            ImageRole::FirstFrame,
            &png(1280, 720),
            &rules(),
            Some(Size::new(1280, 720)),
        )
        .unwrap();
        assert_eq!(
            (ok.width, ok.height, ok.format.as_str()),
            (1280, 720, "png")
        );
        assert_eq!(ok.sha256.len(), 64);
        let e = check(
            ImageRole::FirstFrame,
            &png(640, 480),
            &rules(),
            Some(Size::new(1280, 720)),
        )
        .unwrap_err();
        assert!(
            e.contains("the image is 640x480, the video is 1280x720"),
            "{e}"
        );
        let e = check(
            ImageRole::FirstFrame,
            b"GIF89a....",
            &rules(),
            Some(Size::new(1280, 720)),
        )
        .unwrap_err();
        assert!(e.contains("supported type"), "{e}");
        let mut tight = rules();
        tight.max_bytes = 10;
        let e = check(
            ImageRole::FirstFrame,
            &png(1280, 720),
            &tight,
            Some(Size::new(1280, 720)),
        )
        .unwrap_err();
        assert!(e.contains("largest accepted is 10 bytes"), "{e}");
    }

    #[test]
    fn data_uris_decode_and_urls_are_refused_as_unreachable() {
        let uri = format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(png(2, 2))
        );
        assert_eq!(data_uri_bytes(&uri).unwrap(), png(2, 2));
        let e = data_uri_bytes("https://cdn.example/a.png?sig=secret").unwrap_err();
        assert!(
            e.contains("could not download") && !e.contains("secret"),
            "{e}"
        );
        assert!(data_uri_bytes("data:image/png,raw").is_err());
    }
}
