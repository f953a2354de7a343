//! `shotlist render` against the Azure quickstart's loop, on the same emulator and manifest.
//!
//! The baseline is what the Azure quickstart does: one job at a time, poll every 5 s
//! (emulated), then download the video. Ours is the real binary, two jobs at a time. Both
//! run against one in-process emulator with a fast clock; requests are counted by the
//! emulator. Also reported: our wall time over the ideal lower bound, the total job time
//! divided by the two jobs the service runs at once. Results are ratios measured in the
//! same run, so a busy machine moves both sides.
//!
//! Run: `cargo bench --bench render` (`RENDER_BENCH_SCALE` sets the clock speed-up).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use shotlist::emulator::{Emulator, EmulatorConfig, FaultSpec};
use shotlist::lockfile::Lockfile;

const KEY: &str = "bench-key";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let scale: f64 = std::env::var("RENDER_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60.0);
    let manifest_src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/storyboard.yaml");
    let storyboard = shotlist::manifest::load(&manifest_src).expect("the example is valid");

    // Baseline: the quickstart loop.
    let emu = start(scale).await;
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut job_time = 0.0;
    let client = {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::new()
    };
    let base = format!("{}/openai/v1/video/generations", emu.base_url());
    for shot in &storyboard.shots {
        let body = serde_json::json!({
            "prompt": shot.prompt, "width": shot.size.width, "height": shot.size.height,
            "n_seconds": shot.seconds, "n_variants": shot.variants, "model": shot.model,
        });
        let job: serde_json::Value = client
            .post(format!("{base}/jobs?api-version=preview"))
            .header("api-key", KEY)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = job["id"].as_str().expect("a job id").to_string();
        let done = loop {
            tokio::time::sleep(Duration::from_secs_f64(5.0 / scale)).await;
            let job: serde_json::Value = client
                .get(format!("{base}/jobs/{id}?api-version=preview"))
                .header("api-key", KEY)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            match job["status"].as_str() {
                Some("succeeded") => break job,
                Some("failed" | "cancelled") => panic!("baseline job failed: {job}"),
                _ => {}
            }
        };
        job_time +=
            (done["finished_at"].as_i64().unwrap() - done["created_at"].as_i64().unwrap()) as f64;
        for (i, g) in done["generations"].as_array().unwrap().iter().enumerate() {
            let bytes = client
                .get(format!(
                    "{base}/{}/content/video?api-version=preview",
                    g["id"].as_str().unwrap()
                ))
                .header("api-key", KEY)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            std::fs::write(dir.path().join(format!("{}-{i}.mp4", shot.id)), bytes).unwrap();
        }
    }
    let baseline_wall = started.elapsed().as_secs_f64();
    let baseline_requests = emu.stats().requests_total;
    let baseline_ideal = job_time / scale / 2.0;
    emu.shutdown().await;

    // Ours: the real binary on a fresh emulator, same manifest and clock.
    let emu = start(scale).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&manifest_src, dir.path().join("shotlist.yaml")).unwrap();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_shotlist"))
        .current_dir(dir.path())
        .args([
            "render",
            "--no-thumbnails",
            "--endpoint",
            &emu.base_url(),
            "--time-scale",
            &scale.to_string(),
        ])
        .env("AZURE_OPENAI_API_KEY", KEY)
        .env("CI", "1")
        .output()
        .unwrap();
    let ours_wall = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ours_requests = emu.stats().requests_total;
    let lock = Lockfile::read(&dir.path().join("shotlist.lock")).unwrap();
    let ours_job_time: f64 = lock
        .shots
        .values()
        .flat_map(|s| &s.jobs)
        .map(|j| (j.finished_at.unwrap().as_second() - j.created_at.as_second()) as f64)
        .sum();
    let ours_ideal = ours_job_time / scale / 2.0;
    emu.shutdown().await;

    println!(
        "render bench: {} shots of examples/storyboard.yaml, emulator clock x{scale}",
        storyboard.shots.len()
    );
    println!(
        "  quickstart loop (1 job at a time, poll 5 s): {baseline_wall:7.2} s, {baseline_requests:4} requests"
    );
    println!(
        "  shotlist render (2 at a time, adaptive):     {ours_wall:7.2} s, {ours_requests:4} requests"
    );
    println!(
        "  speed-up {:.2}x, requests {:.2}x of the baseline",
        baseline_wall / ours_wall,
        ours_requests as f64 / baseline_requests as f64
    );
    println!(
        "  ideal lower bound (total job time / 2): {ours_ideal:.2} s; ours / ideal = {:.2} (quickstart / its ideal = {:.2})",
        ours_wall / ours_ideal,
        baseline_wall / baseline_ideal
    );
}

async fn start(scale: f64) -> Emulator {
    Emulator::start(EmulatorConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        api_key: Some(KEY.into()),
        time_scale: scale,
        faults: FaultSpec::none(),
        ..EmulatorConfig::default()
    })
    .await
    .expect("the emulator starts")
}
