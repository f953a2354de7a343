//! The rendered files of a generation (MP4, thumbnails, sprite sheet), each encoded at
//! most once and kept in memory.
//!
//! Encoding is CPU-heavy (up to about a second per video), so it runs on tokio's blocking
//! pool, never on a request's task. The first caller of an asset renders it (the eager
//! task started when the job reaches `processing`, or a content request, whichever comes
//! first); later callers wait for that result. A failed encoding is not cached: the next
//! request tries again. The encoder itself lives in `video.rs`; this module only calls it.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::OnceCell;

use super::state::{Generation, Job};
use super::video::{self, Slate, VideoError};

/// Which file of a generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssetKind {
    Mp4,
    /// Azure `content/thumbnail`.
    ThumbnailJpeg,
    /// OpenAI `variant=thumbnail`.
    ThumbnailWebp,
    /// OpenAI `variant=spritesheet`.
    SpritesheetWebp,
}

impl AssetKind {
    pub fn content_type(self) -> &'static str {
        match self {
            AssetKind::Mp4 => "video/mp4",
            // Azure's spec says `image/jpg` (sic).
            AssetKind::ThumbnailJpeg => "image/jpg",
            AssetKind::ThumbnailWebp | AssetKind::SpritesheetWebp => "image/webp",
        }
    }
}

/// The cached files of one generation.
#[derive(Debug, Default)]
pub struct Assets {
    mp4: OnceCell<Bytes>,
    thumbnail_jpeg: OnceCell<Bytes>,
    thumbnail_webp: OnceCell<Bytes>,
    spritesheet_webp: OnceCell<Bytes>,
}

impl Assets {
    fn cell(&self, kind: AssetKind) -> &OnceCell<Bytes> {
        match kind {
            AssetKind::Mp4 => &self.mp4,
            AssetKind::ThumbnailJpeg => &self.thumbnail_jpeg,
            AssetKind::ThumbnailWebp => &self.thumbnail_webp,
            AssetKind::SpritesheetWebp => &self.spritesheet_webp,
        }
    }
}

/// The bytes of one file of `generation`, rendering them on first use.
pub async fn asset(
    job: &Arc<Job>,
    generation: &Arc<Generation>,
    kind: AssetKind,
) -> Result<Bytes, VideoError> {
    let cell = generation.assets.cell(kind);
    cell.get_or_try_init(|| {
        let job = job.clone();
        let generation = generation.clone();
        async move {
            tokio::task::spawn_blocking(move || render(&job, &generation, kind))
                .await
                .map_err(|e| {
                    VideoError::Encode(format!("the encoder task ended abnormally: {e}"))
                })?
        }
    })
    .await
    .cloned()
}

fn render(job: &Job, generation: &Generation, kind: AssetKind) -> Result<Bytes, VideoError> {
    // Each job's assets are its own (cached per generation), so the inset needs no key.
    let inset = super::images::inset(&job.spec.images);
    let slate = Slate {
        prompt: &job.spec.prompt,
        model: &job.spec.model,
        job_id: &job.id,
        width: job.spec.width,
        height: job.spec.height,
        seconds: job.spec.seconds,
        variant: generation.variant,
        variants: job.spec.variants,
        inset: inset.as_ref(),
    };
    let bytes = match kind {
        AssetKind::Mp4 => video::render_mp4(&slate)?,
        AssetKind::ThumbnailJpeg => video::render_thumbnail_jpeg(&slate)?,
        AssetKind::ThumbnailWebp => video::render_thumbnail_webp(&slate)?,
        AssetKind::SpritesheetWebp => video::render_spritesheet_webp(&slate)?,
    };
    Ok(Bytes::from(bytes))
}
