//! Paths inside the board (the manifest's folder): the one gate for every path that
//! comes from a manifest, a lockfile or anything else not written by this run.
//!
//! A board is shared (git, a colleague, CI), so its files are not trusted: a recorded
//! path, a `prompt_file` or a symlink in the output folder must never make shotlist read,
//! move, write or delete a file outside the board. This module must never follow a
//! symlink out of the board and never open anything but a regular file.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// Why a path was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refused {
    #[error("`{0}` is not a relative path inside the manifest's folder")]
    NotRelative(String),
    #[error("`{0}` goes through a symbolic link")]
    Symlink(String),
    #[error("`{0}` leads outside the manifest's folder")]
    Outside(String),
    #[error("`{0}` is not a regular file")]
    NotAFile(String),
    #[error("`{path}` is larger than {max} bytes")]
    TooLarge { path: String, max: u64 },
    #[error("failed to read `{path}`: {cause}")]
    Io { path: String, cause: String },
}

/// Lexically a plain relative path: `/`-separated names, none empty, `.`, `..`, absolute,
/// a drive prefix or holding a backslash or colon (a separator or drive on Windows).
pub fn is_plain_relative(rel: &str) -> bool {
    !rel.is_empty()
        && !rel.contains(['\\', ':'])
        && !rel.contains('\0')
        && rel
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
        && Path::new(rel)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

/// `root/rel` for a file shotlist writes, moves or deletes: `rel` plain relative, and no
/// existing component below `root` a symlink (a symlinked `renders` or a planted link
/// must not send a write elsewhere).
pub fn resolve_owned(root: &Path, rel: &str) -> Result<PathBuf, Refused> {
    if !is_plain_relative(rel) {
        return Err(Refused::NotRelative(rel.to_owned()));
    }
    let mut path = root.to_path_buf();
    for part in rel.split('/') {
        path.push(part);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(Refused::Symlink(rel.to_owned()));
            }
            Ok(_) => {}
            // The rest does not exist yet: nothing there to lead anywhere.
            Err(_) => break,
        }
    }
    Ok(root.join(rel))
}

/// A relative path with `/` separators, as the lockfile records it.
pub fn rel_string(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Checks that a folder shotlist writes into (the output folder) is no symlink, and
/// none of its parents below `root` is.
pub fn check_owned_dir(root: &Path, rel: &Path) -> Result<(), Refused> {
    let text = rel_string(rel);
    if text.is_empty() {
        return Ok(());
    }
    resolve_owned(root, &text).map(|_| ())
}

/// Reads a text file named by the manifest (a `prompt_file`): its real path, symlinks
/// resolved, must lie inside `root`; it must be a regular file (not a FIFO or a device)
/// of at most `max_bytes`, read with that bound whatever the file claims.
pub fn read_text_inside(root: &Path, rel: &str, max_bytes: u64) -> Result<String, Refused> {
    let bytes = read_inside(root, rel, max_bytes)?;
    String::from_utf8(bytes).map_err(|e| Refused::Io {
        path: rel.to_owned(),
        cause: format!(
            "not UTF-8 text (first bad byte at offset {})",
            e.utf8_error().valid_up_to()
        ),
    })
}

/// Reads a file named by the manifest (a prompt file, an image), by the rules of
/// [`read_text_inside`]: inside `root` by its real path, a regular file, at most
/// `max_bytes`.
pub fn read_inside(root: &Path, rel: &str, max_bytes: u64) -> Result<Vec<u8>, Refused> {
    if !is_plain_relative(rel) {
        return Err(Refused::NotRelative(rel.to_owned()));
    }
    let io = |e: std::io::Error| Refused::Io {
        path: rel.to_owned(),
        cause: e.to_string(),
    };
    let real_root = root.canonicalize().map_err(io)?;
    let real = root.join(rel).canonicalize().map_err(io)?;
    if !real.starts_with(&real_root) {
        return Err(Refused::Outside(rel.to_owned()));
    }
    // Checked before opening: opening a FIFO would wait for a writer.
    let meta = std::fs::metadata(&real).map_err(io)?;
    if !meta.is_file() {
        return Err(Refused::NotAFile(rel.to_owned()));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(&real)
        .map_err(io)?
        .take(max_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > max_bytes {
        return Err(Refused::TooLarge {
            path: rel.to_owned(),
            max: max_bytes,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_relative_paths_only() {
        for ok in ["a.mp4", "renders/a.mp4", "a/b/c-2.webp"] {
            assert!(is_plain_relative(ok), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "renders/../../x",
            "./a",
            "a//b",
            "a/",
            "a\\b",
            "C:/x",
            "a\0b",
        ] {
            assert!(!is_plain_relative(bad), "{bad:?}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn owned_paths_refuse_symlinks_on_the_way() {
        let board = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir(board.path().join("renders")).unwrap();
        std::os::unix::fs::symlink(outside.path(), board.path().join("linked")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("f"), board.path().join("renders/a.mp4"))
            .unwrap();
        assert!(resolve_owned(board.path(), "renders/b.mp4").is_ok());
        assert!(resolve_owned(board.path(), "new/dir/b.mp4").is_ok());
        assert_eq!(
            resolve_owned(board.path(), "linked/a.mp4"),
            Err(Refused::Symlink("linked/a.mp4".into()))
        );
        assert!(resolve_owned(board.path(), "renders/a.mp4").is_err());
        assert!(check_owned_dir(board.path(), Path::new("linked")).is_err());
        assert!(check_owned_dir(board.path(), Path::new("renders")).is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn text_files_stay_inside_are_regular_and_bounded() {
        let board = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let secret = outside.path().join("secret.txt");
        std::fs::write(&secret, "private").unwrap();
        std::fs::create_dir(board.path().join("prompts")).unwrap();
        std::fs::write(board.path().join("prompts/p.txt"), "a fox").unwrap();
        std::os::unix::fs::symlink(&secret, board.path().join("prompts/s.txt")).unwrap();
        std::os::unix::fs::symlink(outside.path(), board.path().join("out")).unwrap();
        std::os::unix::fs::symlink("p.txt", board.path().join("prompts/inside.txt")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", board.path().join("zero.txt")).unwrap();
        let r = |p: &str| read_text_inside(board.path(), p, 64);
        assert_eq!(r("prompts/p.txt").unwrap(), "a fox");
        assert_eq!(r("prompts/inside.txt").unwrap(), "a fox");
        assert_eq!(
            r("prompts/s.txt"),
            Err(Refused::Outside("prompts/s.txt".into()))
        );
        assert_eq!(
            r("out/secret.txt"),
            Err(Refused::Outside("out/secret.txt".into()))
        );
        assert!(r("zero.txt").is_err());
        std::fs::write(board.path().join("big.txt"), "x".repeat(65)).unwrap();
        assert!(matches!(
            r("big.txt"),
            Err(Refused::TooLarge { max: 64, .. })
        ));
        let fifo = board.path().join("fifo.txt");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            assert_eq!(r("fifo.txt"), Err(Refused::NotAFile("fifo.txt".into())));
        }
    }
}
