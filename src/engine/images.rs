//! The images a job starts from: a board's files read again (and checked unchanged since
//! validation), frames of other shots' videos extracted once and recorded (reused while
//! that video is unchanged), each sent in the model's own field where it has one.

use sha2::{Digest, Sha256};

use super::*;
use crate::api::RequestImage;
use crate::lockfile::FrameLock;
use crate::shot::{FrameAt, FrameRef, ImageSource};

/// The largest image read back (the manifest's own bound).
const MAX_IMAGE_BYTES: u64 = 64 << 20;

impl Run {
    /// The request of the shot's jobs, with its images (built once per shot).
    pub(super) async fn request_with_images(
        &self,
        work: &ShotWork,
    ) -> Result<JobRequest, ShotError> {
        let mut req = self.request_for(work);
        if work.plan.shot.images.is_empty() {
            return Ok(req);
        }
        let images = work.images.get_or_try_init(|| self.images_of(work)).await?;
        req.images = images.clone();
        Ok(req)
    }

    async fn images_of(&self, work: &ShotWork) -> Result<Vec<RequestImage>, ShotError> {
        let shot = &work.plan.shot;
        // A name the catalogue does not know (a deployment) is held to the default model.
        let catalogue = &self.storyboard.catalogue;
        let rules = catalogue
            .find(self.storyboard.api, &shot.model)
            .unwrap_or_else(|| catalogue.default_model(self.storyboard.api))
            .images
            .as_ref();
        let field = |role| rules.and_then(|i| i.field(role)).map(str::to_owned);
        let frame_index = |role| {
            let rate = rules?.frame_rate?;
            match role {
                crate::catalogue::ImageRole::FirstFrame => Some(0),
                crate::catalogue::ImageRole::LastFrame => {
                    Some((shot.seconds * rate).saturating_sub(1))
                }
                crate::catalogue::ImageRole::Reference => None,
            }
        };
        let mut out = Vec::with_capacity(shot.images.len());
        for image in &shot.images {
            let (bytes, sha256) = match &image.source {
                ImageSource::File { path, sha256, .. } => {
                    let (dir, rel) = (self.storyboard.dir.clone(), path.clone());
                    let bytes = tokio::task::spawn_blocking(move || {
                        crate::board_path::read_inside(&dir, &rel, MAX_IMAGE_BYTES)
                    })
                    .await
                    .map_err(|e| ShotError::Files(format!("reading `{path}` failed: {e}")))?
                    .map_err(|e| ShotError::Files(format!("failed to read image `{path}`: {e}")))?;
                    let now = hex(&Sha256::digest(&bytes));
                    if now != *sha256 {
                        return Err(ShotError::Files(format!(
                            "image `{path}` changed since the manifest was read; run again to render from the new image"
                        )));
                    }
                    (bytes, now)
                }
                ImageSource::Frame(frame) => self.frame(frame).await?,
            };
            let format = crate::catalogue::ImageFormat::sniff(&bytes).ok_or_else(|| {
                ShotError::Files("an input image is no longer PNG, JPEG or WebP".into())
            })?;
            out.push(RequestImage {
                role: image.role,
                format,
                sha256,
                bytes: Arc::new(bytes),
                field: field(image.role),
                frame_index: frame_index(image.role),
            });
        }
        Ok(out)
    }

    /// The PNG of one frame of another shot's video: the recorded one while that video is
    /// unchanged, else extracted anew, saved under the output folder and recorded.
    async fn frame(&self, frame: &FrameRef) -> Result<(Vec<u8>, String), ShotError> {
        let upstream = self.recorder.shot(&frame.shot);
        let video = upstream
            .as_ref()
            .and_then(|s| s.video_of(frame.take))
            .cloned()
            .ok_or_else(|| {
                ShotError::Files(format!(
                    "needs a frame of `{}` (take {}), which is not rendered",
                    frame.shot, frame.take
                ))
            })?;
        let rel = rel_string(&self.storyboard.output.join(frame.file_name()));
        let sb_dir = self.storyboard.dir.clone();
        if let Some(known) = self.recorder.snapshot().frames.get(&rel)
            && known.video_sha256 == video.sha256
            && plan::check_file(&sb_dir, &known.file, true) == plan::FileState::Unchanged
        {
            let path = sb_dir.join(&known.file.path);
            if let Ok(bytes) = tokio::fs::read(&path).await {
                return Ok((bytes, known.file.sha256.clone()));
            }
        }
        let at = match frame.frame {
            FrameAt::First => crate::frames::FrameAt::First,
            FrameAt::Last => crate::frames::FrameAt::Last,
            FrameAt::Millis(ms) => crate::frames::FrameAt::Seconds(ms as f64 / 1000.0),
        };
        let video_path = crate::board_path::resolve_owned(&sb_dir, &video.path).map_err(|e| {
            ShotError::Files(format!(
                "the video of `{}` is not ours to read: {e}",
                frame.shot
            ))
        })?;
        let (out, frames_dir) = (rel.clone(), self.storyboard.output.join("frames"));
        let saved = tokio::task::spawn_blocking(move || -> Result<(Vec<u8>, FileLock), String> {
            let png = crate::frames::extract(&video_path, at)
                .map_err(|e| e.to_string())?
                .png;
            std::fs::create_dir_all(sb_dir.join(&frames_dir))
                .map_err(|e| format!("failed to create `{}`: {e}", frames_dir.display()))?;
            crate::board_path::check_owned_dir(&sb_dir, &frames_dir).map_err(|e| e.to_string())?;
            let path = sb_dir.join(&out);
            crate::atomic_write::write(&path, &png)
                .map_err(|e| format!("failed to save `{out}`: {e}"))?;
            let meta = std::fs::metadata(&path).map_err(|e| e.to_string())?;
            let file = FileLock {
                path: out,
                sha256: hex(&Sha256::digest(&png)),
                bytes: png.len() as u64,
                mtime_ns: plan::mtime_ns(&meta),
            };
            Ok((png, file))
        })
        .await
        .map_err(|e| ShotError::Files(format!("frame extraction failed: {e}")))?
        .map_err(|e| {
            ShotError::Files(format!(
                "failed to take the {} frame of `{}`: {e}",
                frame.frame.label(),
                frame.shot
            ))
        })?;
        let (png, file) = saved;
        let sha256 = file.sha256.clone();
        self.recorder.update(|l| {
            l.frames.insert(
                rel.clone(),
                FrameLock {
                    shot: frame.shot.clone(),
                    take: frame.take,
                    frame: frame.frame.label(),
                    video_sha256: video.sha256.clone(),
                    file,
                },
            );
        })?;
        self.emit(Event::Notice {
            message: format!(
                "`{}`: took its {} frame (take {}) into `{rel}`",
                frame.shot,
                frame.frame.label(),
                frame.take
            ),
        });
        Ok((png, sha256))
    }
}

fn hex(bytes: &[u8]) -> String {
    crate::cache_key::hex(bytes)
}
