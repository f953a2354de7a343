//! The lockfile during a render: every change is written to disk the moment it happens.
//!
//! A job id is on disk before anything else is done with the job, so a crash, `kill -9`
//! or Ctrl-C at any point leaves a lockfile that parses and names every job that exists:
//! the next run resumes those jobs instead of paying for new ones. Writes are atomic
//! (see `atomic_write.rs`) and serialized by one mutex.

use std::path::PathBuf;
use std::sync::Mutex;

use crate::lockfile::{FileLock, JobLock, LockError, Lockfile, ShotLock};

pub struct Recorder {
    path: PathBuf,
    lock: Mutex<Lockfile>,
}

impl Recorder {
    pub fn new(path: PathBuf, lockfile: Lockfile) -> Recorder {
        Recorder {
            path,
            lock: Mutex::new(lockfile),
        }
    }

    /// A copy of the current lockfile.
    pub fn snapshot(&self) -> Lockfile {
        self.lock.lock().expect("recorder lock").clone()
    }

    /// The entry of one shot, if any.
    pub fn shot(&self, id: &str) -> Option<ShotLock> {
        self.lock
            .lock()
            .expect("recorder lock")
            .shots
            .get(id)
            .cloned()
    }

    /// Applies a change and writes the lockfile if the content changed.
    pub fn update<R>(&self, change: impl FnOnce(&mut Lockfile) -> R) -> Result<R, LockError> {
        let mut lock = self.lock.lock().expect("recorder lock");
        let result = change(&mut lock);
        lock.sync_ledger(jiff::Timestamp::now());
        lock.write(&self.path)?;
        Ok(result)
    }

    /// Changes one recorded job.
    pub fn job(
        &self,
        id: &str,
        job_id: &str,
        change: impl FnOnce(&mut JobLock),
    ) -> Result<(), LockError> {
        self.update(|l| {
            if let Some(job) = l
                .shots
                .get_mut(id)
                .and_then(|s| s.jobs.iter_mut().find(|j| j.id == job_id))
            {
                change(job);
            }
        })
    }

    /// Records a downloaded video (and thumbnail) of one generation.
    pub fn file_saved(
        &self,
        id: &str,
        job_id: &str,
        generation_id: &str,
        file: FileLock,
        thumbnail: Option<FileLock>,
    ) -> Result<(), LockError> {
        self.job(id, job_id, |job| {
            if let Some(g) = job.generations.iter_mut().find(|g| g.id == generation_id) {
                g.file = Some(file);
                if thumbnail.is_some() {
                    g.thumbnail = thumbnail;
                }
            }
        })
    }
}
