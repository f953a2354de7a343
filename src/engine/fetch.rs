//! Fetching: every generation of a finished job saved atomically, with the one layer of
//! download retries; content gone is recorded so the next run renders it anew.

use super::*;

impl Run {
    /// Downloads every generation of a finished job that is not on disk as recorded.
    pub(super) async fn download_job(
        &self,
        work: &ShotWork,
        job_id: &str,
    ) -> Result<(), ShotError> {
        let id = &work.plan.id;
        let entry = self
            .recorder
            .shot(id)
            .ok_or_else(|| ShotError::Files("the lockfile entry vanished during the run".into()))?;
        let job = entry
            .jobs
            .iter()
            .find(|j| j.id == job_id)
            .ok_or_else(|| ShotError::Files("the job vanished from the lockfile".into()))?
            .clone();
        if job.generations.is_empty() {
            return Err(ShotError::Files(format!(
                "job {job_id} succeeded but lists no video"
            )));
        }
        let out_dir = self.storyboard.output_dir();
        tokio::fs::create_dir_all(&out_dir).await.map_err(|e| {
            ShotError::Files(format!("failed to create `{}`: {e}", out_dir.display()))
        })?;
        for g in &job.generations {
            if g.file.as_ref().is_some_and(|f| {
                plan::check_file(&self.storyboard.dir, f, self.config.verify)
                    == plan::FileState::Unchanged
            }) {
                continue;
            }
            let name = work.plan.shot.video_file_name(g.variant);
            let file = self
                .fetch(work, &job, &g.id, &name, ContentKind::Video)
                .await?;
            let extension = self.client.thumbnail_extension();
            let thumbnail = if let Some(extension) = extension.filter(|_| self.config.thumbnails) {
                let name = work.plan.shot.thumbnail_file_name(g.variant, extension);
                match self
                    .fetch(work, &job, &g.id, &name, ContentKind::Thumbnail)
                    .await
                {
                    Ok(t) => Some(t),
                    Err(message) => {
                        self.emit(Event::Notice {
                            message: format!("`{id}`: thumbnail not saved: {message}"),
                        });
                        None
                    }
                }
            } else {
                None
            };
            self.emit(Event::Downloaded {
                id: id.clone(),
                path: file.path.clone(),
                bytes: file.bytes,
            });
            self.recorder
                .file_saved(id, job_id, &g.id, file, thumbnail)
                .map_err(ShotError::from)?;
        }
        Ok(())
    }

    /// Downloads one file with its own retries; the final file appears only when complete.
    pub(super) async fn fetch(
        &self,
        work: &ShotWork,
        job: &JobLock,
        generation: &str,
        name: &str,
        kind: ContentKind,
    ) -> Result<FileLock, ShotError> {
        let rel = self.storyboard.output.join(name);
        let path = self.storyboard.dir.join(&rel);
        let mut attempt = 0;
        let model = self.wire_model(&work.plan.shot.model);
        loop {
            attempt += 1;
            if job.expires_at.is_some_and(|e| e <= self.now()) {
                return Err(ShotError::Files(format!(
                    "job {} expired before its video was saved; run again to re-render",
                    job.id
                )));
            }
            let content = ContentRef {
                job_id: &job.id,
                model: &model,
                generation_id: generation,
                expires_at: job.expires_at.map(|t| t.as_second()),
            };
            let result = self.client.download_content(&content, kind, &path).await;
            match result {
                Ok(d) => {
                    let meta = std::fs::metadata(&path).map_err(|e| {
                        ShotError::Files(format!(
                            "failed to read `{}` after saving: {e}",
                            path.display()
                        ))
                    })?;
                    return Ok(FileLock {
                        path: rel_string(&rel),
                        sha256: d.sha256,
                        bytes: d.bytes,
                        mtime_ns: plan::mtime_ns(&meta),
                    });
                }
                // A 401/403 on content after the same credential polled the job is the
                // known flaky-download case: retried like any failed download, and if it
                // persists only this shot fails (the job stays recorded: the next run
                // downloads it again, never re-creates it).
                Err(e @ ApiError::Auth { .. }) if attempt >= self.config.download_attempts => {
                    return Err(ShotError::Files(format!(
                        "failed to download {name} after {attempt} attempts: {e}"
                    )));
                }
                Err(ApiError::NotFound { .. } | ApiError::Expired { .. }) => {
                    let message = format!(
                        "the service no longer has the {} of job {} (expired or deleted)",
                        kind.as_str(),
                        job.id
                    );
                    // Recorded, so the next run renders again instead of trying to
                    // download the same missing video forever.
                    if matches!(kind, ContentKind::Video) {
                        self.record_job_failed(&work.plan.id, &job.id, "gone", &message)?;
                    }
                    return Err(ShotError::Files(format!(
                        "{message}; run again to render it anew"
                    )));
                }
                // The disk, not the service: trying again cannot help (a full disk
                // stays full); nor does asking again for what came back the wrong kind or
                // over its cap. The job stays recorded for the next run.
                Err(e @ (ApiError::Io { .. } | ApiError::Protocol { .. })) => {
                    return Err(ShotError::Files(format!("failed to save {name}: {e}")));
                }
                Err(e) if attempt < self.config.download_attempts => {
                    let ours = Duration::from_millis(250 * (1 << attempt.min(6)));
                    let hint = match &e {
                        ApiError::Transient { retry_after, .. } => *retry_after,
                        _ => None,
                    };
                    let delay = hint.map_or(ours, |h| h.max(ours)).min(self.config.poll_max);
                    self.emit(Event::Retry {
                        id: work.plan.id.clone(),
                        what: format!("download of {name}"),
                        attempt,
                        delay_ms: delay.as_millis() as u64,
                        reason: e.to_string(),
                    });
                    tokio::time::sleep(delay).await;
                }
                Err(e) => {
                    return Err(ShotError::Files(format!(
                        "failed to download {name} after {attempt} attempts: {e}"
                    )));
                }
            }
        }
    }
}
