//! The real binary, as a user runs it.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

fn shotlist() -> Command {
    let mut cmd = Command::cargo_bin("shotlist").expect("binary is built");
    cmd.env("NO_COLOR", "1")
        .env_remove("AZURE_OPENAI_ENDPOINT")
        .env_remove("OPENAI_BASE_URL");
    cmd
}

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

#[test]
fn example_storyboard_is_valid() {
    shotlist()
        .args(["validate"])
        .arg(repo("examples/storyboard.yaml"))
        .assert()
        .success()
        .stdout(predicate::str::contains("valid, 8 shots"));
}

#[test]
fn validate_reports_every_problem_with_location_and_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("shotlist.yaml");
    std::fs::write(&m, "version: 1\nshots:\n  - id: a\n    prompt: x\n    size: 1x1\n  - id: a\n    prompt: y\n    size: 480x480\n    seconds: 0\n").unwrap();
    shotlist()
        .current_dir(dir.path())
        .arg("validate")
        .assert()
        .code(3)
        .stderr(predicate::str::contains("shotlist.yaml:5:11"))
        .stderr(predicate::str::contains("unsupported size `1x1`"))
        .stderr(predicate::str::contains("duplicate shot id `a`"))
        .stderr(predicate::str::contains("0 seconds is out of range"))
        .stderr(predicate::str::contains("has 3 problems"));
}

#[test]
fn validate_json_is_machine_readable() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m.yaml");
    std::fs::write(
        &m,
        "version: 1\nshots:\n  - id: a\n    prompt: x\n    sise: 480x480\n",
    )
    .unwrap();
    let out = shotlist()
        .arg("validate")
        .arg(&m)
        .args(["--format", "json"])
        .assert()
        .code(3)
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["valid"], false);
    let d = v["diagnostics"].as_array().unwrap();
    let unknown = d
        .iter()
        .find(|d| d["message"].as_str().unwrap().contains("sise"))
        .unwrap();
    assert_eq!(
        (unknown["line"].as_u64(), unknown["column"].as_u64()),
        (Some(5), Some(5))
    );
    assert_eq!(unknown["help"], "did you mean `size`?");
}

#[test]
fn missing_manifest_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    shotlist()
        .current_dir(dir.path())
        .arg("plan")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("failed to read `shotlist.yaml`"));
}

#[test]
fn plan_lists_actions_and_totals() {
    // A copy: the README's first command renders the example in place, and its lockfile
    // must not change what this test sees.
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("storyboard.yaml");
    std::fs::copy(repo("examples/storyboard.yaml"), &manifest).unwrap();
    shotlist()
        .arg("plan")
        .arg(&manifest)
        .args(["--local", "--json"])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"jobs_to_create\": 8"));
    shotlist()
        .arg("plan")
        .arg(&manifest)
        .args(["--local", "logbok"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("did you mean `logbook`?"));
}

#[test]
fn schema_command_prints_the_committed_schema() {
    let committed = std::fs::read_to_string(repo("schemas/shotlist.schema.json")).unwrap();
    shotlist()
        .arg("schema")
        .assert()
        .success()
        .stdout(committed);
}

#[test]
fn every_example_is_valid() {
    let mut n = 0;
    for entry in std::fs::read_dir(repo("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            shotlist().arg("validate").arg(&path).assert().success();
            n += 1;
        }
    }
    assert!(n >= 4, "examples/ lost its manifests");
}

/// The README's first command, as a newcomer runs it: no endpoint, no key, the built-in
/// emulator, real playable files.
#[test]
fn render_with_no_account_uses_the_built_in_emulator() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo("examples/storyboard.yaml"),
        dir.path().join("storyboard.yaml"),
    )
    .unwrap();
    let out = shotlist()
        .current_dir(dir.path())
        .env_remove("AZURE_OPENAI_API_KEY")
        .env_remove("OPENAI_API_KEY")
        .args(["render", "storyboard.yaml"])
        .assert()
        .success()
        .get_output()
        .clone();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("built-in emulator") && text.contains("placeholders"),
        "{text}"
    );
    assert!(text.contains("8 rendered"), "{text}");
    for id in [
        "opening",
        "keeper-window",
        "lamp-room",
        "logbook",
        "logbook-2",
        "stairs",
        "ship",
        "dawn",
        "title",
    ] {
        let mp4 = std::fs::read(dir.path().join("renders").join(format!("{id}.mp4"))).unwrap();
        assert_eq!(&mp4[4..8], b"ftyp", "{id}");
    }
    // Placeholders are fresh for the emulator, never for a real service.
    shotlist()
        .current_dir(dir.path())
        .args(["plan", "storyboard.yaml", "--local"])
        .assert()
        .success()
        .stdout(predicate::str::contains("8 fresh"));
    shotlist()
        .current_dir(dir.path())
        .args([
            "plan",
            "storyboard.yaml",
            "--endpoint",
            "https://res.openai.azure.com",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("placeholder from the emulator"));
}

#[test]
fn a_broken_lockfile_is_located_and_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("shotlist.yaml"),
        "version: 1\nshots:\n  - id: a\n    prompt: x\n    size: 480x480\n",
    )
    .unwrap();
    let broken = "version: 1\nshots:\n  a:\n    input_hash: [\n";
    std::fs::write(dir.path().join("shotlist.lock"), broken).unwrap();
    shotlist()
        .current_dir(dir.path())
        .args(["render", "--local"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("does not parse"))
        .stderr(predicate::str::contains("shotlist.lock:4:"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("shotlist.lock")).unwrap(),
        broken
    );
    std::fs::write(dir.path().join("shotlist.lock"), "version: 9\nshots: {}\n").unwrap();
    shotlist()
        .current_dir(dir.path())
        .args(["plan", "--local"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("newer than this shotlist reads"));
}

/// `shotlist models --json` is the catalogue for tools: every model with its limits, its
/// price (or none, never 0 for unknown) and the sources of its facts.
#[test]
fn models_json_lists_every_model_with_limits_price_and_sources() {
    let out = shotlist().args(["models", "--json"]).assert().success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let models = v["models"].as_array().unwrap();
    let ids: Vec<(&str, &str)> = models
        .iter()
        .map(|m| (m["provider"].as_str().unwrap(), m["id"].as_str().unwrap()))
        .collect();
    for expected in [
        ("azure-jobs", "sora"),
        ("openai-videos", "sora-2"),
        ("openai-videos", "sora-2-pro"),
        ("fal", "veo-3.1"),
        ("fal", "wan-2.7"),
        ("replicate", "veo-3.1"),
        ("replicate", "hailuo-2.3"),
        ("openrouter", "google/veo-3.1-lite"),
    ] {
        assert!(ids.contains(&expected), "{expected:?} not in {ids:?}");
    }
    for m in models {
        assert!(!m["sizes"].as_array().unwrap().is_empty(), "{m}");
        assert!(
            m["seconds"].is_object() && m["prompt_chars"]["max"].is_u64(),
            "{m}"
        );
        let sources = m["sources"].as_array().unwrap();
        for fact in ["sizes", "seconds", "prompt_chars", "price"] {
            assert!(
                sources
                    .iter()
                    .any(|s| s["facts"].as_array().unwrap().iter().any(|f| f == fact)),
                "{}: no source for {fact}",
                m["id"]
            );
        }
    }
    assert!(
        models[0]["price"].is_null(),
        "Azure sora's price is unknown"
    );
    assert_eq!(models[1]["price"]["per_second"], 0.1);
    assert_eq!(v["providers"].as_array().unwrap().len(), 5);
    let only = shotlist()
        .args(["models", "--api", "azure-jobs", "--json"])
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&only.get_output().stdout).unwrap();
    assert_eq!(v["models"].as_array().unwrap().len(), 1);
    shotlist()
        .args(["models", "--api", "nope"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown API `nope`"));
}
