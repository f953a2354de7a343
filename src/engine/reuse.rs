//! Reuse: a renamed shot (or a changed output folder) takes over its recorded render;
//! files are linked or copied to the new names and swapped in atomically, no request.

use super::*;

impl Run {
    /// Gives a renamed shot the render recorded under its old id: its files are linked
    /// (or copied) to the new names and swapped in atomically, the lockfile entry moves,
    /// then the old names go. A crash anywhere leaves the old entry or the new one valid.
    pub(super) fn reuse(&self, sp: &ShotPlan, from: &str) -> Result<(), ShotError> {
        let mut entry = self
            .recorder
            .shot(from)
            .ok_or_else(|| ShotError::Files("the renamed shot's entry vanished".into()))?;
        let dir = &self.storyboard.dir;
        let mut moves: Vec<(std::path::PathBuf, std::path::PathBuf)> = Vec::new();
        let out = &self.storyboard.output;
        let mut refused = None;
        let mut plan_move = |path: &mut String, name: String| {
            let rel = rel_string(&out.join(name));
            // Both ends inside the board with no symlink on the way: a move never
            // touches a file outside it, whatever the lockfile says.
            match (
                crate::board_path::resolve_owned(dir, path),
                crate::board_path::resolve_owned(dir, &rel),
            ) {
                (Ok(old), Ok(new)) => moves.push((old, new)),
                (Err(e), _) | (_, Err(e)) => refused = Some(e),
            }
            *path = rel;
        };
        for g in entry.jobs.iter_mut().flat_map(|j| j.generations.iter_mut()) {
            if let Some(f) = &mut g.file {
                plan_move(&mut f.path, sp.shot.video_file_name(g.variant));
            }
            // Thumbnails are a convenience: one that is gone is dropped, not fatal.
            if g.thumbnail
                .as_ref()
                .is_some_and(|t| !dir.join(&t.path).is_file())
            {
                g.thumbnail = None;
            }
            if let Some(t) = &mut g.thumbnail {
                let ext = Path::new(&t.path)
                    .extension()
                    .and_then(|e| e.to_str())
                    .unwrap_or("jpg")
                    .to_string();
                plan_move(&mut t.path, sp.shot.thumbnail_file_name(g.variant, &ext));
            }
        }
        if let Some(e) = refused {
            return Err(ShotError::Files(format!(
                "refused to reuse the render of `{from}`: {e}"
            )));
        }
        let staged: Vec<_> = moves
            .iter()
            .enumerate()
            .map(|(i, (old, new))| {
                let tmp =
                    new.with_file_name(format!(".shotlist-reuse-{}-{i}.part", std::process::id()));
                let _ = std::fs::remove_file(&tmp);
                std::fs::hard_link(old, &tmp)
                    .or_else(|_| std::fs::copy(old, &tmp).map(|_| ()))
                    .map_err(|e| {
                        ShotError::Files(format!("failed to reuse `{}`: {e}", old.display()))
                    })?;
                Ok((tmp, new))
            })
            .collect::<Result<_, ShotError>>()?;
        for (tmp, new) in staged {
            std::fs::rename(&tmp, new).map_err(|e| {
                ShotError::Files(format!("failed to move into `{}`: {e}", new.display()))
            })?;
        }
        crate::atomic_write::sync_dir(&self.storyboard.output_dir());
        self.recorder
            .update(|l| {
                l.shots.remove(from);
                l.shots.insert(sp.id.clone(), entry);
            })
            .map_err(ShotError::from)?;
        let new_paths: HashSet<&std::path::PathBuf> = moves.iter().map(|(_, n)| n).collect();
        for (old, _) in &moves {
            if !new_paths.contains(old) {
                let _ = std::fs::remove_file(old);
            }
        }
        Ok(())
    }
}
