//! The shared cache in a run (see `cache.rs`): a shot the cache has is taken from it,
//! every file pulled and verified before any replaces what is on disk, then recorded
//! with its source, and nothing is asked of the provider; a shot this run rendered is
//! published once all its files are on disk.

use std::collections::HashMap;
use std::path::PathBuf;

use super::*;
use crate::cache::{Cache, Entry, EntryJob, Lookup};

impl Run {
    /// The cache, when the run has one.
    pub(super) fn cache(&self) -> Option<&Arc<Cache>> {
        self.config.cache.as_ref()
    }

    /// Looks a shot that waited up now that its inputs are known; `Some(entry)`: a hit.
    pub(super) async fn look_up(&self, work: &ShotWork) -> Option<Entry> {
        let cache = self.cache()?;
        if !work.plan.cache_eligible() {
            return None;
        }
        let hash = work.plan.input_hash.as_deref()?;
        match cache.lookup(hash).await {
            Lookup::Hit(entry) => Some(*entry),
            Lookup::Miss(miss) => {
                cache.stats.misses.fetch_add(1, Ordering::Relaxed);
                if miss.is_warning() {
                    self.emit(Event::Notice {
                        message: format!("warning: `{}`: cache {miss}", work.plan.id),
                    });
                }
                None
            }
        }
    }

    /// Takes the shot from the cache: every blob pulled into a temporary file and
    /// verified, then all renamed into place, then the lockfile entry written (with
    /// `source: cache` and the jobs that made the files). `Err` before the renames (a blob
    /// that does not verify, a store that fails): nothing was changed; a rename that fails
    /// midway may leave some files replaced by verified ones while the lockfile still has
    /// the old entry, which the next plan sees as modified files. Either way the shot is
    /// then rendered.
    pub(super) async fn take_from_cache(
        &self,
        work: &ShotWork,
        entry: &Entry,
    ) -> Result<(), String> {
        let cache = self.cache().ok_or("no cache")?;
        let shot = &work.plan.shot;
        let input_hash = work.plan.input_hash.clone().ok_or("inputs not known")?;
        if entry.takes() != (1..=shot.variants).collect::<Vec<_>>() {
            return Err(format!(
                "the entry has takes {:?}; the shot has {}",
                entry.takes(),
                shot.variants
            ));
        }
        let out_dir = self.storyboard.output_dir();
        tokio::fs::create_dir_all(&out_dir)
            .await
            .map_err(|e| format!("failed to create `{}`: {e}", out_dir.display()))?;
        let dest = |name: String| -> Result<(String, PathBuf), String> {
            let rel = rel_string(&self.storyboard.output.join(name));
            let path = crate::board_path::resolve_owned(&self.storyboard.dir, &rel)
                .map_err(|e| e.to_string())?;
            Ok((rel, path))
        };
        // Pulled and verified first: a bad blob leaves every file as it was.
        let mut staged: Vec<(crate::cache::Pulled, String, PathBuf)> = Vec::new();
        // Each job with, per generation: its take, its video's path, its thumbnail's.
        type Taken = (u32, String, Option<String>);
        let mut jobs: Vec<(EntryJob, Vec<Taken>)> = Vec::new();
        for job in &entry.jobs {
            let mut files = Vec::new();
            for g in &job.generations {
                let (rel, path) = dest(shot.video_file_name(g.variant))?;
                let pulled = cache.pull(&g.video, &out_dir).await?;
                staged.push((pulled, rel.clone(), path));
                let thumbnail = match &g.thumbnail {
                    // A thumbnail is an image: no other extension may name its file (an
                    // `mp4` would land on a video of the board).
                    Some(t)
                        if self.config.thumbnails
                            && matches!(t.extension.as_str(), "jpg" | "jpeg" | "png" | "webp") =>
                    {
                        let (rel, path) = dest(shot.thumbnail_file_name(g.variant, &t.extension))?;
                        // A convenience: one that does not verify is left out, not fatal.
                        match cache.pull(t, &out_dir).await {
                            Ok(pulled) => {
                                staged.push((pulled, rel.clone(), path));
                                Some(rel)
                            }
                            Err(message) => {
                                self.emit(Event::Notice {
                                    message: format!(
                                        "warning: `{}`: thumbnail not taken from the cache: {message}",
                                        work.plan.id
                                    ),
                                });
                                None
                            }
                        }
                    }
                    _ => None,
                };
                files.push((g.variant, rel, thumbnail));
            }
            jobs.push((job.clone(), files));
        }
        let mut saved: HashMap<String, FileLock> = HashMap::new();
        for (pulled, rel, path) in staged {
            let (sha256, bytes) = (pulled.sha256.clone(), pulled.bytes);
            pulled
                .persist(&path)
                .map_err(|e| format!("failed to move into `{}`: {e}", path.display()))?;
            let meta = std::fs::metadata(&path)
                .map_err(|e| format!("failed to read `{}`: {e}", path.display()))?;
            self.emit(Event::Downloaded {
                id: work.plan.id.clone(),
                path: rel.clone(),
                bytes,
            });
            saved.insert(
                rel.clone(),
                FileLock {
                    path: rel,
                    sha256,
                    bytes,
                    mtime_ns: plan::mtime_ns(&meta),
                },
            );
        }
        crate::atomic_write::sync_dir(&out_dir);
        let jobs = jobs
            .into_iter()
            .map(|(job, files)| JobLock {
                id: job.id.clone(),
                variant: job.variant,
                status: JobState::Succeeded,
                service_status: None,
                created_at: job.created_at,
                finished_at: job.finished_at,
                // Someone else's job: never downloaded from or resumed by this board.
                expires_at: None,
                failure: None,
                generations: files
                    .into_iter()
                    .zip(&job.generations)
                    .map(|((variant, video, thumbnail), g)| GenerationLock {
                        id: g.id.clone(),
                        variant,
                        file: saved.get(&video).cloned(),
                        thumbnail: thumbnail.and_then(|t| saved.get(&t).cloned()),
                    })
                    .collect(),
                estimated_cost: None,
                run: None,
            })
            .collect();
        let lock = ShotLock {
            input_hash,
            api: self.storyboard.api,
            // The service that rendered it; for the emulator's realm, this run's (a
            // placeholder stays a placeholder, for this board's emulator).
            endpoint: if cache.realm() == crate::cache::Realm::Emulator {
                self.endpoint.clone()
            } else {
                entry.endpoint.clone()
            },
            model: shot.model.clone(),
            inputs: Some(work.inputs(self.storyboard.api)),
            request: serde_json::Value::Null,
            jobs,
            creating: Default::default(),
            source: Some(lockfile::Source {
                kind: "cache".into(),
                from: cache.url().to_owned(),
                published_at: entry.published_at,
                taken_at: self.now(),
            }),
        };
        let id = work.plan.id.clone();
        self.recorder
            .update(|l| {
                l.shots.insert(id, lock);
            })
            .map_err(|e| e.to_string())?;
        cache.stats.hits.fetch_add(1, Ordering::Relaxed);
        work.from_cache.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// A hit taken, or on failure (a blob that does not verify, a file that cannot be
    /// moved) a warning and the shot rendered as if the cache had not had it.
    pub(super) async fn take_or_render(self: &Arc<Self>, work: Arc<ShotWork>, entry: Entry) {
        match self.take_from_cache(&work, &entry).await {
            Ok(()) => self.finish_shot(&work),
            Err(message) => {
                if let Some(cache) = self.cache() {
                    cache.stats.misses.fetch_add(1, Ordering::Relaxed);
                }
                if self.config.locked {
                    let error = ShotError::NotSent(format!(
                        "--locked: not taken from the cache ({message}), and rendering it would need a new job"
                    ));
                    self.emit(Event::ShotFailed {
                        id: work.plan.id.clone(),
                        message: error.to_string(),
                    });
                    work.fail(&error);
                    self.finish_shot(&work);
                    return;
                }
                self.emit(Event::Notice {
                    message: format!(
                        "warning: `{}`: not taken from the cache ({message}); rendering it",
                        work.plan.id
                    ),
                });
                self.run_items(work).await;
            }
        }
    }

    /// After a shot is done: publishes it when this run rendered (or finished) it, the
    /// cache is writable, and all its takes are on disk. Runs in the background; the run
    /// waits for it before its summary.
    pub(super) fn publish_later(&self, work: &ShotWork) {
        let Some(cache) = self.cache() else {
            return;
        };
        if cache.read_only()
            || work.state() != ShotState::Working
            || work.from_cache.load(Ordering::SeqCst)
            || !matches!(
                work.plan.action,
                Action::Render | Action::Resume | Action::Download
            )
        {
            return;
        }
        let Some(lock) = self.recorder.shot(&work.plan.id) else {
            return;
        };
        let inputs = work.inputs(self.storyboard.api);
        let Some((entry, files)) = crate::cache::Entry::of_render(
            &self.storyboard,
            &work.plan.shot,
            &lock,
            &inputs,
            cache.realm(),
            self.now(),
        ) else {
            return;
        };
        let cache = Arc::clone(cache);
        let id = work.plan.id.clone();
        let task = tokio::spawn(async move { cache.publish(&entry, &files).await });
        self.publishing
            .lock()
            .expect("publishing lock")
            .push((id, task));
    }

    /// Waits for every publish this run started; a failure is a warning (the render is
    /// safe on disk and in the lockfile either way).
    pub(super) async fn finish_publishing(&self) {
        let tasks = std::mem::take(&mut *self.publishing.lock().expect("publishing lock"));
        for (id, task) in tasks {
            match task.await {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) => self.emit(Event::Notice {
                    message: format!(
                        "`{id}`: already in the cache (another run published it first)"
                    ),
                }),
                Ok(Err(message)) => self.emit(Event::Notice {
                    message: format!("warning: `{id}`: not published to the cache: {message}"),
                }),
                Err(e) => self.emit(Event::Notice {
                    message: format!("warning: `{id}`: not published to the cache: {e}"),
                }),
            }
        }
    }
}
