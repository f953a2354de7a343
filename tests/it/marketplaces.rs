//! fal, Replicate and OpenRouter through the real binary against the emulator: the
//! render tests the Azure jobs API has, for each, and the media host (the CDN stand-in)
//! never sees the credential.

use std::process::Stdio;
use std::time::Duration;

use shotlist::emulator::{Emulator, EmulatorConfig};
use shotlist::lockfile::JobState;

use crate::support::*;

/// The marketplaces, each with a model that takes 480x480 for 4 seconds.
const MARKETS: [(&str, &str); 3] = [
    ("fal", "seedance-2.0"),
    ("replicate", "seedance-2.0"),
    ("openrouter", "bytedance/seedance-2.0-fast"),
];

fn board(api: &str, model: &str, shots: usize) -> String {
    let mut m = format!(
        "version: 1\napi: {api}\ndefaults:\n  model: {model}\n  size: 480x480\n  seconds: 4\nshots:\n"
    );
    for i in 0..shots {
        m.push_str(&format!(
            "  - id: s{i:02}\n    prompt: Shot {i}, a lantern swinging in the wind.\n"
        ));
    }
    m
}

/// Every test's last word: the CDN stand-in served videos and never saw a credential.
fn assert_media_clean(emu: &Emulator) {
    let s = stats(emu);
    assert_eq!(s.media_requests_with_credential, 0, "{s:?}");
}

async fn run(p: &Project, emu: &Emulator, extra: &[&str]) -> std::process::Output {
    p.render(emu, extra).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_marketplace_renders_is_fresh_rerenders_one_edit_and_downloads_a_deleted_video() {
    for (api, model) in MARKETS {
        let emu = emulator(emulator_config()).await;
        let p = Project::new(&board(api, model, 4));
        let out = run(&p, &emu, &[]).await;
        assert_eq!(code(&out), 0, "{api}: {}", text(&out));
        assert_eq!(stats(&emu).jobs_created, 4, "{api}");
        p.assert_outputs_match_lock();
        let lock = p.lock();
        assert!(
            lock.shots.values().all(|s| s.jobs.len() == 1
                && s.jobs[0].status == JobState::Succeeded
                && s.api.as_str() == api),
            "{api}: {lock:?}"
        );
        assert!(p.path("renders/s00.mp4").is_file(), "{api}");
        assert!(
            stats(&emu).media_requests >= 4,
            "{api}: the videos come from the media host"
        );

        let requests = stats(&emu).requests_total;
        let out = run(&p, &emu, &[]).await;
        assert_eq!(code(&out), 0, "{api}: {}", text(&out));
        assert_eq!(
            stats(&emu).requests_total,
            requests,
            "{api}: a rerun asks nothing"
        );

        let m = std::fs::read_to_string(p.path("shotlist.yaml")).unwrap();
        std::fs::write(p.path("shotlist.yaml"), m.replace("Shot 2,", "Shot two,")).unwrap();
        let out = run(&p, &emu, &[]).await;
        assert_eq!(code(&out), 0, "{api}: {}", text(&out));
        assert_eq!(stats(&emu).jobs_created, 5, "{api}: one edit, one job");
        assert!(
            text(&out).contains("changed: prompt"),
            "{api}: {}",
            text(&out)
        );

        let before = std::fs::read(p.path("renders/s01.mp4")).unwrap();
        std::fs::remove_file(p.path("renders/s01.mp4")).unwrap();
        let out = run(&p, &emu, &[]).await;
        assert_eq!(code(&out), 0, "{api}: {}", text(&out));
        assert_eq!(
            stats(&emu).jobs_created,
            5,
            "{api}: a deleted video needs no job"
        );
        assert_eq!(
            std::fs::read(p.path("renders/s01.mp4")).unwrap(),
            before,
            "{api}"
        );
        p.assert_outputs_match_lock();
        p.assert_no_key_in_files();
        assert_media_clean(&emu);
        emu.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_marketplace_survives_injected_faults_without_a_duplicate_job() {
    for (api, model) in MARKETS {
        let emu = emulator(EmulatorConfig {
            seed: 5,
            faults: "429=0.08,500=0.05,503=0.05,drop=0.04,truncate=0.1,fail=0.1"
                .parse()
                .unwrap(),
            ..emulator_config()
        })
        .await;
        let p = Project::new(&board(api, model, 10));
        let out = run(&p, &emu, &["--rpm", "600"]).await;
        let all = text(&out);
        assert!(matches!(code(&out), 0 | 6), "{api}: {all}");
        let s = stats(&emu);
        assert!(s.faults_injected.values().sum::<u64>() > 0, "{api}: {s:?}");
        assert!(
            s.creates_by_prompt_hash.values().all(|&n| n == 1),
            "{api}: a job was paid twice: {s:?}"
        );
        // Every shot rendered, or failed with a message naming it.
        let lock = p.lock();
        for i in 0..10 {
            let id = format!("s{i:02}");
            let done = lock.shots.get(&id).is_some_and(|s| {
                s.jobs.iter().any(|j| j.status == JobState::Succeeded)
                    && s.generations().all(|(_, g)| g.file.is_some())
            });
            assert!(
                done || all.contains(&format!("FAILED {id}: ")),
                "{api} {id}: {all}"
            );
        }
        p.assert_outputs_match_lock();
        assert_media_clean(&emu);
        emu.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_marketplace_killed_at_random_moments_never_pays_twice() {
    for (api, model) in MARKETS {
        let emu = emulator(EmulatorConfig {
            seed: 3,
            faults: "slow=0.6,slow-ms=300".parse().unwrap(),
            ..emulator_config()
        })
        .await;
        let p = Project::new(&board(api, model, 6));
        let mut rng = fastrand::Rng::with_seed(17);
        for round in 0..5 {
            let mut cmd = p.command(&emu, &[]);
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
            let mut child = cmd.spawn().unwrap();
            tokio::time::sleep(Duration::from_millis(rng.u64(100..1200))).await;
            child.kill().unwrap();
            let _ = child.wait();
            if p.path("shotlist.lock").exists() {
                let _ = p.lock();
            }
            let s = stats(&emu);
            assert!(
                s.creates_by_prompt_hash.values().all(|&n| n == 1),
                "{api} round {round}: {s:?}"
            );
        }
        let out = run(&p, &emu, &[]).await;
        let all = text(&out);
        let s = stats(&emu);
        assert!(
            s.creates_by_prompt_hash.values().all(|&n| n == 1),
            "{api}: a job was paid twice: {s:?}"
        );
        if api != "replicate" {
            // fal and OpenRouter list no jobs: a submit cut off by the kill is never sent again
            // on its own; the shot says so and how to go on.
            assert!(matches!(code(&out), 0 | 6), "{api}: {all}");
            if code(&out) == 6 {
                assert!(all.contains("--force"), "{api}: {all}");
            }
        } else {
            assert_eq!(code(&out), 0, "{api}: {all}");
            assert_eq!(s.creates_by_prompt_hash.len(), 6, "{api}: {s:?}");
        }
        p.assert_outputs_match_lock();
        assert_media_clean(&emu);
        emu.shutdown().await;
    }
}

/// The manifest outlives a vendor: the same shots render on the Azure jobs API, fal,
/// Replicate and OpenRouter with only `api:` and `model:` changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_shots_render_on_four_providers_with_only_api_and_model_changed() {
    let shots = "shots:\n  - id: harbour\n    prompt: A harbour at dawn, gulls over the water.\n    size: 480x480\n    seconds: 4\n  - id: lamp\n    prompt: A lamp flickers in a window.\n    size: 480x480\n    seconds: 4\n";
    let emu = emulator(emulator_config()).await;
    for (api, model) in [
        ("azure-jobs", "sora"),
        ("fal", "seedance-2.0"),
        ("replicate", "seedance-2.0"),
        ("openrouter", "bytedance/seedance-2.0-fast"),
    ] {
        let p = Project::new(&format!(
            "version: 1\napi: {api}\ndefaults:\n  model: {model}\n{shots}"
        ));
        let out = run(&p, &emu, &[]).await;
        assert_eq!(code(&out), 0, "{api}: {}", text(&out));
        for id in ["harbour", "lamp"] {
            assert!(
                p.path(&format!("renders/{id}.mp4")).is_file(),
                "{api}: {id}"
            );
        }
        p.assert_outputs_match_lock();
    }
    assert_eq!(stats(&emu).jobs_created, 8);
    assert_media_clean(&emu);
    emu.shutdown().await;
}

/// A missing credential is named before any request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_marketplace_credential_is_named_before_any_request() {
    let emu = emulator(emulator_config()).await;
    for (api, model, var) in [
        ("fal", "seedance-2.0", "FAL_KEY"),
        ("replicate", "seedance-2.0", "REPLICATE_API_TOKEN"),
        (
            "openrouter",
            "bytedance/seedance-2.0-fast",
            "OPENROUTER_API_KEY",
        ),
    ] {
        let p = Project::new(&board(api, model, 1));
        let mut cmd = p.command(&emu, &[]);
        cmd.env_remove("FAL_KEY")
            .env_remove("REPLICATE_API_TOKEN")
            .env_remove("OPENROUTER_API_KEY");
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        assert_eq!(code(&out), 5, "{api}: {}", text(&out));
        assert!(text(&out).contains(var), "{api}: {}", text(&out));
    }
    assert_eq!(stats(&emu).requests_total, 0);
    emu.shutdown().await;
}

/// OpenRouter out of credit: the run stops like a refused credential, starts nothing
/// new, records what ran, and exits 8.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openrouter_out_of_credit_stops_the_run_with_exit_8() {
    // kling-v3.0-pro at $0.112/s: 3 s is $0.336 a job; the credit pays for one.
    let emu = emulator(EmulatorConfig {
        credit_usd: Some(0.5),
        ..emulator_config()
    })
    .await;
    let mut m = String::from(
        "version: 1\napi: openrouter\ndefaults:\n  model: kwaivgi/kling-v3.0-pro\n  size: 1280x720\n  seconds: 3\nshots:\n",
    );
    for i in 0..4 {
        m.push_str(&format!(
            "  - id: s{i}\n    prompt: Shot {i} of the night market.\n"
        ));
    }
    let p = Project::new(&m);
    let out = run(&p, &emu, &["--jobs", "1"]).await;
    let all = text(&out);
    assert_eq!(code(&out), 8, "{all}");
    assert!(
        all.contains("out of credit") && all.contains("Add credit"),
        "{all}"
    );
    let s = stats(&emu);
    assert_eq!(s.jobs_created, 1, "{s:?}");
    assert_eq!(
        s.responses_by_status.get("402").copied(),
        Some(1),
        "one 402, then nothing new: {s:?}"
    );
    let rendered = (0..4)
        .filter(|i| p.path(&format!("renders/s{i}.mp4")).is_file())
        .count();
    assert_eq!(
        rendered, 1,
        "the job that started is followed and saved: {all}"
    );
    p.assert_outputs_match_lock();
    assert_media_clean(&emu);
    emu.shutdown().await;
}

/// Replicate deletes an output an hour after its prediction ends: a prediction found
/// later with its output gone is recorded as paid but not received, and the next run
/// renders the shot anew.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicate_output_removed_before_download_is_recorded_and_rendered_anew() {
    // Outputs are kept 400 emulated seconds here (the catalogue's hour, shortened).
    let emu = emulator(EmulatorConfig {
        retention: Duration::from_secs(400),
        ..emulator_config()
    })
    .await;
    let p = Project::new(&board("replicate", "seedance-2.0", 1));
    assert_eq!(code(&run(&p, &emu, &[]).await), 0);
    std::fs::remove_file(p.path("renders/s00.mp4")).unwrap();
    tokio::time::sleep(Duration::from_secs_f64(900.0 / SCALE)).await;
    let out = run(&p, &emu, &[]).await;
    assert_eq!(code(&out), 6, "{}", text(&out));
    assert_eq!(
        stats(&emu).jobs_created,
        1,
        "not rendered anew within the same run"
    );
    let lock = p.lock();
    assert_eq!(lock.shots["s00"].jobs[0].status, JobState::Failed);
    assert_eq!(
        lock.ledger[0].outcome,
        shotlist::lockfile::LedgerOutcome::Expired
    );
    let out = run(&p, &emu, &[]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(stats(&emu).jobs_created, 2);
    assert!(p.path("renders/s00.mp4").is_file());
    assert_media_clean(&emu);
    emu.shutdown().await;
}
