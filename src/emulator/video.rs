//! Placeholder videos: a slate showing the prompt, size, duration, variant and a running
//! timecode, encoded as browser-playable H.264 MP4.

/// What a placeholder video shows.
#[derive(Clone, Debug)]
pub struct Slate<'a> {
    pub prompt: &'a str,
    pub model: &'a str,
    pub job_id: &'a str,
    pub width: u32,
    pub height: u32,
    pub seconds: u32,
    /// 1-based variant number, of `variants`.
    pub variant: u32,
    pub variants: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    #[error("failed to encode the placeholder video: {0}")]
    Encode(String),
}

/// Renders the slate as an MP4 (H.264, `moov` before `mdat`) of exactly
/// `width`x`height` and `seconds` long.
pub fn render_mp4(_slate: &Slate<'_>) -> Result<Vec<u8>, VideoError> {
    Err(VideoError::Encode(
        "the video encoder is being built".into(),
    ))
}

/// A JPEG still of the slate's first frame (Azure `content/thumbnail`, `image/jpg`).
pub fn render_thumbnail_jpeg(_slate: &Slate<'_>) -> Result<Vec<u8>, VideoError> {
    Err(VideoError::Encode(
        "the thumbnail encoder is being built".into(),
    ))
}

/// A WebP still (`variant=thumbnail`) of the slate.
pub fn render_thumbnail_webp(_slate: &Slate<'_>) -> Result<Vec<u8>, VideoError> {
    Err(VideoError::Encode(
        "the thumbnail encoder is being built".into(),
    ))
}

/// A WebP sprite sheet (`variant=spritesheet`): a grid of frames across the duration.
pub fn render_spritesheet_webp(_slate: &Slate<'_>) -> Result<Vec<u8>, VideoError> {
    Err(VideoError::Encode(
        "the sprite sheet encoder is being built".into(),
    ))
}
