//! Checks by tools no one here wrote: ffprobe decodes the placeholder videos, and the
//! official Python clients (OpenAI's SDK, Replicate's `replicate`, fal's `fal-client`,
//! OpenRouter's `openrouter`) drive the emulator unchanged, fal's and Replicate's over TLS
//! with a certificate the test makes.
//!
//! `scripts/test.sh` installs them all. A missing tool fails these tests with the install
//! command; they never skip.

use std::path::{Path, PathBuf};
use std::process::Command;

use shotlist_emulator::video::{FRAMES_PER_SECOND, Slate, render_mp4};
use shotlist_emulator::{Emulator, EmulatorConfig, FaultSpec, TlsFiles};
use shotlist_models::limits::{Api, Size};

use crate::support::{FAL_MODEL, OPENROUTER_MODEL, REPLICATE_MODEL, model_input, self_signed};

fn require(tool: &str, install: &str) {
    let found = Command::new(tool)
        .arg(if tool == "ffprobe" {
            "-version"
        } else {
            "--version"
        })
        .output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "`{tool}` is needed by this test and is missing: {install} (bash scripts/test.sh does it)"
    );
}

fn python() -> String {
    std::env::var("SHOTLIST_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// (codec, width, height, duration in seconds) as ffprobe reads them.
fn probe(path: &Path) -> (String, u32, u32, f64) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            "stream=codec_name,width,height:format=duration",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "ffprobe rejected {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &v["streams"][0];
    (
        s["codec_name"].as_str().unwrap_or_default().to_string(),
        s["width"].as_u64().unwrap_or(0) as u32,
        s["height"].as_u64().unwrap_or(0) as u32,
        v["format"]["duration"]
            .as_str()
            .and_then(|d| d.parse().ok())
            .unwrap_or(-1.0),
    )
}

/// Pixel-seconds one encode in the ffprobe test may take: 720p for 3 s.
const PROBE_BUDGET: u64 = 1280 * 720 * 3;

#[test]
fn ffprobe_decodes_every_size_of_every_api_at_the_requested_duration() {
    require("ffprobe", "apt-get install ffmpeg");
    let dir = tempfile::tempdir().unwrap();
    let frame = 1.0 / f64::from(FRAMES_PER_SECOND);
    let mut seen = std::collections::BTreeSet::new();
    for api in Api::ALL {
        for (i, rule) in api.limits().sizes.iter().enumerate() {
            // Each size once (the APIs share many); durations vary across the range,
            // both ends included, within a budget so large frames stay quick.
            if !seen.insert(rule.size) {
                continue;
            }
            let wanted = [1, 20, 4, 12, 8, 5, 2, 16, 3][i % 9];
            let seconds = wanted.min((PROBE_BUDGET / rule.size.pixels()).max(1) as u32);
            let slate = Slate {
                prompt: "A lighthouse beam sweeping across a stormy sea at dusk.",
                model: &api.limits().default_model,
                job_id: "task_ffprobe",
                width: rule.size.width,
                height: rule.size.height,
                seconds,
                variant: 1,
                variants: 1,
                inset: None,
            };
            let bytes = render_mp4(&slate).expect("the encoder renders every size in the table");
            let path: PathBuf = dir
                .path()
                .join(format!("{api}-{}-{seconds}.mp4", rule.size));
            std::fs::write(&path, bytes).unwrap();
            let (codec, w, h, d) = probe(&path);
            assert_eq!(codec, "h264", "{}", path.display());
            assert_eq!(
                (w, h),
                (rule.size.width, rule.size.height),
                "{}",
                path.display()
            );
            assert!(
                (d - f64::from(seconds)).abs() <= frame + 1e-6,
                "{}: {d} s for {seconds} s",
                path.display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_openai_python_sdk_works_unchanged() {
    require("ffprobe", "apt-get install ffmpeg");
    let py = python();
    let has_sdk = Command::new(&py)
        .args(["-c", "import openai"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        has_sdk,
        "the `openai` Python package is missing: {py} -m pip install openai (bash scripts/test.sh does it)"
    );

    let key = "sdk-test-key-5b1e";
    let emu = Emulator::start(EmulatorConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        api_key: Some(key.into()),
        time_scale: 600.0,
        faults: FaultSpec::none(),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("sdk.mp4");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/openai_sdk_check.py");
    let mut cmd = Command::new(&py);
    cmd.arg(script)
        .args([
            "--base-url",
            &format!("{}/v1", emu.base_url()),
            "--api-key",
            key,
        ])
        .arg("--out")
        .arg(&out_path);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "the SDK check failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let (codec, w, h, d) = probe(&out_path);
    assert_eq!((codec.as_str(), w, h), ("h264", 1280, 720));
    assert!(
        (d - 4.0).abs() <= 1.0 / f64::from(FRAMES_PER_SECOND) + 1e-6,
        "{d}"
    );
    assert!(emu.stats().jobs_created == 1);
    emu.shutdown().await;
}

/// Fails with the install command when `module` does not import.
fn require_python_module(py: &str, module: &str, package: &str) {
    let found = Command::new(py)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "the `{package}` Python package is missing: {py} -m pip install {package} (bash scripts/test.sh does it)"
    );
}

/// Runs an SDK check script with `env`; panics with its output when it fails.
async fn run_script(py: &str, script: &str, args: Vec<String>, env: Vec<(String, String)>) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sdk")
        .join(script);
    let mut cmd = Command::new(py);
    cmd.arg(&script).args(args).envs(env);
    // The emulator is on loopback: no proxy of the environment may stand between.
    cmd.env("NO_PROXY", "127.0.0.1,127.0.0.2,localhost")
        .env("no_proxy", "127.0.0.1,127.0.0.2,localhost");
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{} failed: {}{}",
        script.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An emulator over TLS with the certificate of `dir`, and the certificate's path.
async fn tls_emulator(dir: &Path, key: &str) -> (Emulator, PathBuf) {
    let (cert, tls_key) = self_signed(dir);
    let emu = Emulator::start(EmulatorConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        api_key: Some(key.into()),
        time_scale: 600.0,
        rpm: 0,
        tls: Some(TlsFiles {
            cert: cert.clone(),
            key: tls_key,
        }),
        faults: FaultSpec::none(),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    assert!(emu.base_url().starts_with("https://127.0.0.1:"));
    assert!(emu.media_base_url().starts_with("https://"));
    (emu, cert)
}

fn assert_probed(path: &Path, size: Size, seconds: u32) {
    let (codec, w, h, d) = probe(path);
    assert_eq!((codec.as_str(), w, h), ("h264", size.width, size.height));
    assert!(
        (d - f64::from(seconds)).abs() <= 1.0 / f64::from(FRAMES_PER_SECOND) + 1e-6,
        "{d} s for {seconds} s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_replicate_python_client_works_unchanged() {
    require("ffprobe", "apt-get install ffmpeg");
    let py = python();
    require_python_module(&py, "replicate", "replicate");
    let dir = tempfile::tempdir().unwrap();
    let key = "r8_sdk-test-token";
    let (emu, cert) = tls_emulator(dir.path(), key).await;
    let (size, seconds) = (Size::new(854, 480), 5);
    let input = model_input(
        Api::Replicate,
        REPLICATE_MODEL,
        "A paper boat, Replicate SDK check",
        size,
        seconds,
    );
    let out = dir.path().join("replicate.mp4");
    run_script(
        &py,
        "replicate_sdk_check.py",
        vec![
            "--model".into(),
            REPLICATE_MODEL.into(),
            "--input".into(),
            input.to_string(),
            "--out".into(),
            out.display().to_string(),
        ],
        vec![
            // The 1.x client appends `/v1` itself.
            ("REPLICATE_BASE_URL".into(), emu.base_url()),
            ("REPLICATE_API_TOKEN".into(), key.into()),
            ("REPLICATE_POLL_INTERVAL".into(), "0.05".into()),
            ("SSL_CERT_FILE".into(), cert.display().to_string()),
        ],
    )
    .await;
    assert_probed(&out, size, seconds);
    let stats = emu.stats();
    assert_eq!(stats.jobs_created, 2);
    // `FileOutput.read()` fetches the output with the client's own authenticated
    // session: Replicate's client sends its API token to the file host.
    assert_eq!(stats.media_requests, 1);
    assert_eq!(stats.media_requests_with_credential, 1);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_fal_python_client_works_unchanged() {
    require("ffprobe", "apt-get install ffmpeg");
    let py = python();
    require_python_module(&py, "fal_client", "fal-client");
    let dir = tempfile::tempdir().unwrap();
    let key = "fal-key-id:fal-key-secret";
    let (emu, cert) = tls_emulator(dir.path(), key).await;
    let (size, seconds) = (Size::new(720, 1280), 4);
    let input = model_input(
        Api::Fal,
        FAL_MODEL,
        "A paper boat, fal SDK check",
        size,
        seconds,
    );
    let out = dir.path().join("fal.mp4");
    run_script(
        &py,
        "fal_sdk_check.py",
        vec![
            "--model".into(),
            FAL_MODEL.into(),
            "--input".into(),
            input.to_string(),
            "--out".into(),
            out.display().to_string(),
        ],
        vec![
            // Read when `fal_client` is imported; the client always speaks https.
            ("FAL_QUEUE_RUN_HOST".into(), emu.addr().to_string()),
            ("FAL_KEY".into(), key.into()),
            ("SSL_CERT_FILE".into(), cert.display().to_string()),
        ],
    )
    .await;
    assert_probed(&out, size, seconds);
    let stats = emu.stats();
    assert_eq!(stats.jobs_created, 1);
    assert_eq!(stats.media_requests, 1);
    assert_eq!(stats.media_requests_with_credential, 0);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_openrouter_python_client_works_unchanged() {
    require("ffprobe", "apt-get install ffmpeg");
    let py = python();
    require_python_module(&py, "openrouter", "openrouter");
    let catalogue = shotlist_models::catalogue::Catalogue::builtin();
    let model = catalogue
        .find(Api::Openrouter, OPENROUTER_MODEL)
        .expect("a catalogue model");
    let (size, seconds) = (Size::new(720, 1280), 4);
    let fields = model.wire_fields(size, seconds);
    let longest = match model.seconds.rule().unwrap() {
        shotlist_models::limits::SecondsRule::Range { max, .. } => max,
        shotlist_models::limits::SecondsRule::OneOf(v) => v.into_iter().max().unwrap(),
    };
    let cost = model.price.as_ref().unwrap().per_second_at(size) * f64::from(seconds);
    let key = "sk-or-v1-sdk-test";
    let emu = Emulator::start(EmulatorConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        api_key: Some(key.into()),
        time_scale: 600.0,
        rpm: 0,
        // One job's worth and a half: the script's second create gets 402.
        credit_usd: Some(cost * 1.5),
        faults: FaultSpec::none(),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("openrouter.mp4");
    run_script(
        &py,
        "openrouter_sdk_check.py",
        vec![
            // `OpenRouter(server_url=...)`: the client puts `/videos...` after it.
            "--server-url".into(),
            format!("{}/api/v1", emu.base_url()),
            "--api-key".into(),
            key.into(),
            "--model".into(),
            OPENROUTER_MODEL.into(),
            "--request".into(),
            serde_json::Value::Object(fields).to_string(),
            "--bad-duration".into(),
            (longest + 1).to_string(),
            "--expect-402".into(),
            "--out".into(),
            out.display().to_string(),
        ],
        Vec::new(),
    )
    .await;
    assert_probed(&out, size, seconds);
    let stats = emu.stats();
    assert_eq!(stats.jobs_created, 1);
    assert_eq!(stats.responses_by_status["400"], 1);
    assert_eq!(stats.responses_by_status["402"], 1);
    // The client downloads through the API's content route, never the media host.
    assert_eq!(stats.media_requests, 0);
    emu.shutdown().await;
}
