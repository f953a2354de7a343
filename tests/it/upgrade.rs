//! Lockfiles written by earlier releases keep working: boards rendered by shotlist 0.1.0
//! (`tests/fixtures/lockfile-0.1/`, lockfile version 1 with no revision) read with
//! today's code, and nothing in them is rendered or downloaded again.

use std::path::{Path, PathBuf};

use shotlist::lockfile::Lockfile;
use shotlist::plan::{self, Action};

use crate::support::copy_dir;

/// The host the fixtures were rendered against (`shotlist emulator --listen ...`).
const FIXTURE_ENDPOINT: &str = "127.0.0.1:18089";

/// A copy of fixture board `name`, so no test writes into the repository.
fn board(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/lockfile-0.1")
        .join(name);
    copy_dir(&from, dir.path());
    let manifest = dir.path().join("shotlist.yaml");
    (dir, manifest)
}

fn options() -> plan::Options {
    plan::Options {
        endpoint: FIXTURE_ENDPOINT.into(),
        verify: true,
        force: false,
        only: Vec::new(),
        tags: Vec::new(),
        now: None,
        no_deps: false,
    }
}

#[test]
fn lockfile_of_0_1_still_reads_and_nothing_re_renders() {
    for name in ["azure", "openai"] {
        let (_dir, manifest) = board(name);
        let sb = shotlist::manifest::load(&manifest).unwrap();
        let lock = Lockfile::read(&sb.lockfile_path()).expect("the 0.1 lockfile reads");
        let planned = plan::plan(&sb, &lock, &options());
        assert!(!planned.shots.is_empty());
        for s in &planned.shots {
            assert_eq!(s.action, Action::Fresh, "{name}/{}: {}", s.id, s.reason);
        }
        // Rewritten, it gains its revision and loses nothing.
        assert_eq!(lock.revision, shotlist::lockfile::REVISION);
        lock.write(&sb.lockfile_path()).unwrap();
        let again = Lockfile::read(&sb.lockfile_path()).unwrap();
        assert_eq!(again, lock, "{name}");
        let replanned = plan::plan(&sb, &again, &options());
        assert!(replanned.shots.iter().all(|s| s.action == Action::Fresh));
    }
}

#[test]
fn the_binary_plans_a_0_1_board_as_fresh() {
    let (dir, _) = board("openai");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shotlist"))
        .current_dir(dir.path())
        .args(["plan", "--json", "--endpoint"])
        .arg(format!("http://{FIXTURE_ENDPOINT}/v1"))
        .env("NO_COLOR", "1")
        .env_remove("AZURE_OPENAI_ENDPOINT")
        .env_remove("OPENAI_BASE_URL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let shots = v["shots"].as_array().unwrap();
    assert!(shots.iter().all(|s| s["action"] == "fresh"), "{v}");
}

/// A lockfile written by a newer shotlist (a higher `revision`) is read, planned, and
/// never rewritten: what the newer one recorded would be lost.
#[test]
fn a_newer_revision_is_read_but_never_rewritten() {
    let (dir, _) = board("azure");
    let path = dir.path().join("shotlist.lock");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("version: 1\n", "version: 1\nrevision: 9\n")
        + shotlist::lockfile::FOOTER;
    std::fs::write(&path, &text).unwrap();
    let lock = Lockfile::read(&path).unwrap();
    assert_eq!(lock.revision, 9);
    let err = lock.write(&path).unwrap_err();
    assert!(
        err.to_string().contains("newer than this shotlist writes"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    // `render` stops with the reason before touching it (a deleted video makes it want
    // to write).
    std::fs::remove_file(dir.path().join("renders/pier.mp4")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shotlist"))
        .current_dir(dir.path())
        .args(["render", "--endpoint", "http://127.0.0.1:9"])
        .env("AZURE_OPENAI_API_KEY", "unused")
        .env("NO_COLOR", "1")
        .env("CI", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("revision 9"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
}
