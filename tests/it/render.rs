//! `shotlist render`, the real binary, over real HTTP against the emulator on loopback,
//! with an API key set: what a user relies on.

use std::process::{Command, Stdio};
use std::time::Duration;

use sha2::Digest;
use shotlist::emulator::{Emulator, EmulatorConfig};
use shotlist::lockfile::{JobState, Lockfile};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storyboard_renders_then_is_fresh_then_rerenders_only_what_changed() {
    let emu = emulator(emulator_config()).await;
    let p = Project::example();

    let out = p.render(&emu, &[]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    let first = stats(&emu);
    assert_eq!(first.jobs_created, 8, "{}", text(&out));
    assert!(first.jobs_running_max <= 2, "{first:?}");
    for name in [
        "opening.mp4",
        "keeper-window.mp4",
        "logbook.mp4",
        "logbook-2.mp4",
        "title.jpg",
    ] {
        assert!(
            p.path("renders").join(name).is_file(),
            "{name} missing: {}",
            text(&out)
        );
    }
    p.assert_outputs_match_lock();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(p.path("renders/opening.mp4"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644, "videos are readable by others");
    }
    let lock = p.lock();
    assert_eq!(lock.shots.len(), 8);
    assert!(
        lock.shots
            .values()
            .all(|s| s.endpoint.starts_with("127.0.0.1:"))
    );
    assert!(lock.shots.values().all(|s| {
        s.jobs
            .iter()
            .all(|j| j.status == JobState::Succeeded && j.expires_at.is_some())
    }));

    // A second run makes no create request.
    let out = p.render(&emu, &[]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(stats(&emu).jobs_created, 8);
    assert!(text(&out).contains("8 skipped"), "{}", text(&out));

    // Editing one prompt re-renders exactly that shot.
    let manifest = std::fs::read_to_string(p.path("shotlist.yaml")).unwrap();
    std::fs::write(
        p.path("shotlist.yaml"),
        manifest.replace("fountain pen", "quill"),
    )
    .unwrap();
    let out = p.render(&emu, &[]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(stats(&emu).jobs_created, 9);
    assert!(text(&out).contains("changed: prompt"), "{}", text(&out));
    assert!(
        text(&out).contains("1 rendered") && text(&out).contains("7 skipped"),
        "{}",
        text(&out)
    );

    // Deleting an output downloads it again without a new job, byte for byte.
    let before = std::fs::read(p.path("renders/ship.mp4")).unwrap();
    std::fs::remove_file(p.path("renders/ship.mp4")).unwrap();
    let downloads = stats(&emu).content_downloads;
    let out = p.render(&emu, &[]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(stats(&emu).jobs_created, 9, "{}", text(&out));
    assert!(stats(&emu).content_downloads > downloads);
    assert_eq!(std::fs::read(p.path("renders/ship.mp4")).unwrap(), before);
    assert!(text(&out).contains("1 downloaded"), "{}", text(&out));

    p.assert_outputs_match_lock();
    p.assert_no_key_in_files();
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_shots_never_more_than_two_running_and_no_429_from_our_pacing() {
    let emu = emulator(emulator_config()).await;
    let p = Project::new(&manifest(20, 2, ""));
    let out = p.render(&emu, &[]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    let s = stats(&emu);
    assert_eq!(s.jobs_created, 20);
    assert_eq!(s.jobs_running_max, 2, "{s:?}");
    assert_eq!(s.responses_429, 0, "{s:?}");
    assert!(s.requests_max_per_minute <= 60, "{s:?}");
    p.assert_outputs_match_lock();
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_faults_end_in_rendered_or_clear_failure_without_duplicate_jobs() {
    let cfg = EmulatorConfig {
        seed: 7,
        faults: "429=0.08,500=0.05,503=0.05,drop=0.04,truncate=0.1,fail=0.1"
            .parse()
            .unwrap(),
        ..emulator_config()
    };
    let emu = emulator(cfg).await;
    let p = Project::new(&manifest(12, 1, ""));
    let out = p.render(&emu, &["--rpm", "600"]).await;
    let all = text(&out);
    assert!(matches!(code(&out), 0 | 6), "{all}");
    let s = stats(&emu);
    assert!(s.faults_injected.values().sum::<u64>() > 0, "{s:?}");
    assert!(
        s.creates_by_prompt_hash.values().all(|&n| n == 1),
        "a job was paid twice: {s:?}"
    );
    let lock = p.lock();
    for i in 0..12 {
        let id = format!("s{i:02}");
        let shot = &lock.shots[&id];
        let job = &shot.jobs[0];
        match job.status {
            JobState::Succeeded => assert!(
                shot.generations().all(|(_, g)| g.file.is_some()),
                "{id}: {all}"
            ),
            JobState::Failed => {
                let f = job.failure.as_ref().expect("a failure is recorded");
                assert!(
                    all.contains(&format!("FAILED {id}: ")) && all.contains(&f.code),
                    "{id}: {all}"
                );
            }
            other => panic!("{id} ended {other:?}: {all}"),
        }
    }
    p.assert_outputs_match_lock();
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_moments_then_rerun_never_pays_twice() {
    // Slow answers (the job is made, the answer waits) widen the window in which a
    // kill lands between a create reaching the service and its answer.
    let cfg = EmulatorConfig {
        seed: 3,
        faults: "slow=0.6,slow-ms=300".parse().unwrap(),
        ..emulator_config()
    };
    let emu = emulator(cfg).await;
    let p = Project::new(&manifest(8, 3, ""));
    let mut rng = fastrand::Rng::with_seed(11);
    for round in 0..6 {
        let mut cmd = p.command(&emu, &[]);
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        let wait = Duration::from_millis(rng.u64(100..1200));
        tokio::time::sleep(wait).await;
        child.kill().unwrap(); // SIGKILL
        let _ = child.wait();
        if p.path("shotlist.lock").exists() {
            let _ = p.lock(); // parses at every instant
        }
        let s = stats(&emu);
        assert!(
            s.creates_by_prompt_hash.values().all(|&n| n == 1),
            "round {round}: {s:?}"
        );
    }
    let out = p.render(&emu, &[]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    let s = stats(&emu);
    assert_eq!(s.creates_by_prompt_hash.len(), 8, "{s:?}");
    assert!(
        s.creates_by_prompt_hash.values().all(|&n| n == 1),
        "a job was paid twice: {s:?}"
    );
    p.assert_outputs_match_lock();
    assert!(p.lock().shots.values().all(|s| s.creating.is_empty()));
    // No temp file left where videos live.
    let leftovers: Vec<_> = walk(&p.path("renders"))
        .into_iter()
        .filter(|f| !f.extension().is_some_and(|e| e == "mp4" || e == "jpg"))
        .filter(|f| !f.ends_with(shotlist::cli::render::RUN_LOCK))
        .filter(|f| !f.ends_with(shotlist::cli::render::OWNER_FILE))
        .filter(|f| !f.ends_with(shotlist::sheet::DEFAULT_FILE))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_refuses_before_any_request() {
    let emu = emulator(emulator_config()).await;
    let p = Project::new(&manifest(2, 1, ""));
    let out = p.render(&emu, &["--locked"]).await;
    assert_eq!(code(&out), 4, "{}", text(&out));
    assert!(
        text(&out).contains("would need a new job"),
        "{}",
        text(&out)
    );
    assert_eq!(stats(&emu).requests_total, 0);
    // Once rendered, --locked passes.
    assert_eq!(code(&p.render(&emu, &[]).await), 0);
    let out = p.render(&emu, &["--locked"]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_key_stops_the_run_naming_the_credential_not_its_value() {
    let emu = emulator(emulator_config()).await;
    let p = Project::new(&manifest(3, 1, ""));
    let mut cmd = p.command(&emu, &[]);
    cmd.env("AZURE_OPENAI_API_KEY", "sk-wrong-key-value-123456");
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let all = text(&out);
    assert_eq!(code(&out), 5, "{all}");
    assert!(all.contains("AZURE_OPENAI_API_KEY"), "{all}");
    assert!(!all.contains("sk-wrong-key-value-123456"), "{all}");
    assert_eq!(stats(&emu).jobs_created, 0);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moderated_prompt_fails_that_shot_only_with_the_services_reason() {
    let emu = emulator(EmulatorConfig {
        moderation_word: Some("forbidden".into()),
        ..emulator_config()
    })
    .await;
    let mut m = manifest(3, 1, "");
    m.push_str("  - id: bad\n    prompt: A forbidden scene.\n");
    let p = Project::new(&m);
    let out = p.render(&emu, &[]).await;
    let all = text(&out);
    assert_eq!(code(&out), 6, "{all}");
    assert!(
        all.contains("FAILED bad: ") && all.contains("input_moderation"),
        "{all}"
    );
    assert!(all.contains("3 rendered"), "{all}");
    let lock = p.lock();
    assert_eq!(lock.shots["bad"].jobs[0].status, JobState::Failed);
    // The next plan says why it will be rendered again.
    let plan = Command::new(env!("CARGO_BIN_EXE_shotlist"))
        .current_dir(p.dir.path())
        .args(["plan", "--endpoint", &emu.base_url()])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&plan.stdout).contains("last job failed"),
        "{}",
        text(&plan)
    );
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_videos_renders_one_job_per_variant() {
    let emu = emulator(emulator_config()).await;
    let p = Project::new(
        "version: 1\napi: openai-videos\nshots:\n  - id: duo\n    prompt: Two takes of a red kite.\n    size: 1280x720\n    variants: 2\n",
    );
    let mut cmd = p.command_at(&format!("{}/v1", emu.base_url()), &[]);
    cmd.env("OPENAI_API_KEY", KEY);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert_no_key(&out);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(stats(&emu).jobs_created, 2);
    let lock = p.lock();
    assert_eq!(lock.shots["duo"].jobs.len(), 2);
    assert!(p.path("renders/duo.mp4").is_file() && p.path("renders/duo-2.mp4").is_file());
    assert!(p.path("renders/duo.webp").is_file());
    p.assert_outputs_match_lock();
    emu.shutdown().await;
}

/// The crash window itself, made deterministic: a create reached the service (the job
/// exists) but the run died before recording it. The lockfile holds only the write-ahead
/// mark; the next run must find and adopt that job, not pay for another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_lost_to_a_crash_is_adopted_not_repeated() {
    let emu = emulator(emulator_config()).await;
    let p = Project::new(&manifest(1, 2, ""));
    let storyboard = shotlist::manifest::load(&p.path("shotlist.yaml")).unwrap();
    let shot = &storyboard.shots[0];
    let body = serde_json::json!({
        "prompt": shot.prompt, "width": 480, "height": 480,
        "n_seconds": 2, "n_variants": 1, "model": "sora",
    });
    let url = format!(
        "{}/openai/v1/video/generations/jobs?api-version=preview",
        emu.base_url()
    );
    let made: serde_json::Value = reqwest_client()
        .post(url)
        .header("api-key", KEY)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut lock = Lockfile::new();
    lock.shots.insert(
        shot.id.clone(),
        shotlist::lockfile::ShotLock {
            input_hash: shotlist::cache_key::input_hash(storyboard.api, shot),
            api: storyboard.api,
            endpoint: shotlist::endpoint::host_of(&emu.base_url()).unwrap(),
            model: shot.model.clone(),
            inputs: Some(shotlist::render_inputs::RenderInputs::of(
                storyboard.api,
                shot,
            )),
            request: serde_json::Value::Null,
            jobs: Vec::new(),
            creating: [(0, jiff::Timestamp::now())].into_iter().collect(),
            source: None,
        },
    );
    lock.write(&p.path("shotlist.lock")).unwrap();

    let out = p.render(&emu, &[]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("adopted"), "{}", text(&out));
    assert_eq!(stats(&emu).jobs_created, 1, "{}", text(&out));
    assert_eq!(
        p.lock().shots[&shot.id].jobs[0].id,
        made["id"].as_str().unwrap()
    );
    p.assert_outputs_match_lock();
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_ctrl_c_starts_nothing_new_and_records_what_ran() {
    let emu = emulator(emulator_config()).await;
    let p = Project::new(&manifest(6, 3, ""));
    let mut cmd = p.command(&emu, &[]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    // Once the first two jobs exist, press Ctrl-C once.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while stats(&emu).jobs_created < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pid = child.id().to_string();
    let sent = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(sent.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_no_key(&out);
    let all = text(&out);
    assert_eq!(code(&out), 130, "{all}");
    assert!(all.contains("stopping: no new jobs"), "{all}");
    let created = stats(&emu).jobs_created;
    assert!(
        created < 6,
        "a stop should leave some shots unstarted: {all}"
    );
    // What ran was waited for and recorded, with its files.
    let lock = p.lock();
    let finished: Vec<_> = lock.shots.values().collect();
    assert_eq!(
        finished.len() as u64,
        created,
        "unstarted shots get no entry: {all}"
    );
    assert!(
        finished
            .iter()
            .all(|s| s.jobs[0].status == JobState::Succeeded),
        "{all}"
    );
    p.assert_outputs_match_lock();
    // The next run renders only the rest.
    let out = p.render(&emu, &[]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(stats(&emu).jobs_created, 6);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renaming_a_shot_reuses_its_render_without_a_request() {
    let emu = emulator(emulator_config()).await;
    let p = Project::new(&manifest(2, 1, ""));
    assert_eq!(code(&p.render(&emu, &[]).await), 0);
    let video = std::fs::read(p.path("renders/s01.mp4")).unwrap();
    let manifest = std::fs::read_to_string(p.path("shotlist.yaml")).unwrap();
    std::fs::write(
        p.path("shotlist.yaml"),
        manifest.replace("id: s01", "id: lantern"),
    )
    .unwrap();
    // A thumbnail gone from disk does not stop the rename.
    std::fs::remove_file(p.path("renders/s01.jpg")).unwrap();
    let requests = stats(&emu).requests_total;

    let out = p.render(&emu, &[]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(
        text(&out).contains("renamed from `s01`") && text(&out).contains("1 reused"),
        "{}",
        text(&out)
    );
    assert_eq!(
        stats(&emu).requests_total,
        requests,
        "a rename costs no request"
    );
    assert_eq!(std::fs::read(p.path("renders/lantern.mp4")).unwrap(), video);
    assert!(!p.path("renders/s01.mp4").exists() && !p.path("renders/s01.jpg").exists());
    let lock = p.lock();
    assert!(lock.shots.contains_key("lantern") && !lock.shots.contains_key("s01"));
    p.assert_outputs_match_lock();
    // Changing `output` moves every file, again without a request.
    let manifest = std::fs::read_to_string(p.path("shotlist.yaml")).unwrap();
    std::fs::write(
        p.path("shotlist.yaml"),
        manifest.replace("version: 1\n", "version: 1\noutput: videos\n"),
    )
    .unwrap();
    let out = p.render(&emu, &[]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("2 reused"), "{}", text(&out));
    assert_eq!(stats(&emu).requests_total, requests);
    assert_eq!(std::fs::read(p.path("videos/lantern.mp4")).unwrap(), video);
    assert!(!p.path("renders/lantern.mp4").exists());
    p.assert_outputs_match_lock();
    emu.shutdown().await;
}

/// One job per variant (`openai-videos`): a failed take is created again on its own;
/// the takes already on disk are never paid for twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_take_is_rendered_again_alone() {
    let flaky = emulator(EmulatorConfig {
        seed: 5,
        faults: "fail=0.5".parse().unwrap(),
        ..emulator_config()
    })
    .await;
    let p = Project::new(
        "version: 1\napi: openai-videos\nshots:\n  - id: kite\n    prompt: A red kite over dunes.\n    size: 1280x720\n    variants: 4\n",
    );
    let run = |emu: &Emulator| {
        let mut cmd = p.command_at(&format!("{}/v1", emu.base_url()), &[]);
        cmd.env("OPENAI_API_KEY", KEY);
        cmd
    };
    let mut cmd = run(&flaky);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let failed = p.lock().shots["kite"]
        .jobs
        .iter()
        .filter(|j| j.status == JobState::Failed)
        .count();
    assert!(
        (1..4).contains(&failed),
        "the seed should fail some takes, not all: {}",
        text(&out)
    );
    assert_eq!(code(&out), 6, "{}", text(&out));
    let kept: Vec<Vec<u8>> = (1..=4)
        .map(|v| {
            if v == 1 {
                "kite.mp4".to_string()
            } else {
                format!("kite-{v}.mp4")
            }
        })
        .filter_map(|name| std::fs::read(p.path("renders").join(name)).ok())
        .collect();
    assert_eq!(kept.len(), 4 - failed);
    flaky.shutdown().await;

    let steady = emulator(emulator_config()).await;
    let mut cmd = run(&steady);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(
        stats(&steady).jobs_created,
        failed as u64,
        "only the failed takes are created again"
    );
    for v in 1..=4 {
        let name = if v == 1 {
            "kite.mp4".to_string()
        } else {
            format!("kite-{v}.mp4")
        };
        assert!(p.path("renders").join(name).is_file());
    }
    p.assert_outputs_match_lock();
    steady.shutdown().await;
}

/// A video the service deleted before the recorded expiry: the failed download is
/// recorded, so the next run renders again instead of failing the same way forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_video_gone_from_the_service_is_rendered_again() {
    // Jobs take 60–300 emulated seconds; they vanish 400 s after creation.
    let emu = emulator(EmulatorConfig {
        retention: Duration::from_secs(400),
        ..emulator_config()
    })
    .await;
    let p = Project::new(&manifest(1, 1, ""));
    assert_eq!(code(&p.render(&emu, &[]).await), 0);
    std::fs::remove_file(p.path("renders/s00.mp4")).unwrap();
    tokio::time::sleep(Duration::from_secs_f64(600.0 / SCALE)).await;

    let out = p.render(&emu, &[]).await;
    assert_eq!(code(&out), 6, "{}", text(&out));
    assert!(
        text(&out).contains("no longer has the video"),
        "{}",
        text(&out)
    );
    assert_eq!(p.lock().shots["s00"].jobs[0].status, JobState::Failed);

    let out = p.render(&emu, &[]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(stats(&emu).jobs_created, 2);
    assert!(p.path("renders/s00.mp4").is_file());
    emu.shutdown().await;
}

/// A lockfile is shared like the manifest: a recorded path that leads outside the board
/// is refused at its line, and no file outside is linked, moved or deleted (issue 7, #2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lockfile_path_leading_outside_the_board_is_refused_and_touches_nothing() {
    let emu = emulator(emulator_config()).await;
    let p = Project::new(&manifest(1, 1, ""));
    assert_eq!(code(&p.render(&emu, &[]).await), 0);
    let outside = tempfile::tempdir().unwrap();
    let notes = outside.path().join("notes.txt");
    std::fs::write(&notes, "not a video").unwrap();
    let rel = format!(
        "../{}/notes.txt",
        outside.path().file_name().unwrap().to_string_lossy()
    );
    let meta = std::fs::metadata(&notes).unwrap();
    let mtime_ns = meta
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let mut lock = p.lock();
    let f = lock.shots.get_mut("s00").unwrap().jobs[0].generations[0]
        .file
        .as_mut()
        .unwrap();
    f.path = rel.clone();
    f.bytes = meta.len();
    f.sha256 = shotlist::cache_key::hex(&sha2::Sha256::digest(b"not a video"));
    f.mtime_ns = Some(mtime_ns as i128);
    let hostile = lock.to_yaml();
    std::fs::write(p.path("shotlist.lock"), &hostile).unwrap();
    let manifest = std::fs::read_to_string(p.path("shotlist.yaml")).unwrap();
    std::fs::write(
        p.path("shotlist.yaml"),
        manifest.replace("id: s00", "id: renamed"),
    )
    .unwrap();
    let requests = stats(&emu).requests_total;

    let out = p.render(&emu, &[]).await;
    assert_eq!(code(&out), 1, "{}", text(&out));
    let line = hostile.lines().position(|l| l.contains(&rel)).unwrap() + 1;
    assert!(
        text(&out).contains(&format!("shotlist.lock:{line}:")),
        "located at line {line}: {}",
        text(&out)
    );
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "not a video");
    assert!(!p.path("renders/renamed.mp4").exists());
    assert_eq!(
        std::fs::read_to_string(p.path("shotlist.lock")).unwrap(),
        hostile,
        "the lockfile is left as it was"
    );
    assert_eq!(stats(&emu).requests_total, requests, "no request was sent");
    emu.shutdown().await;
}

/// A symlinked output folder would send the videos and the run lock outside the board
/// (issue 7, #13): the render refuses before any request.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlinked_output_folder_is_refused() {
    let emu = emulator(emulator_config()).await;
    let p = Project::new(&manifest(1, 1, ""));
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), p.path("renders")).unwrap();
    let out = p.render(&emu, &[]).await;
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(text(&out).contains("symbolic link"), "{}", text(&out));
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    assert_eq!(stats(&emu).requests_total, 0);
    emu.shutdown().await;
}

const BOARD_MODELS: &str = "version: 1
models:
  - id: lantern-v1
    provider: azure-jobs
    provider_model: lantern-v1
    sizes:
      - { size: 640x360, max_takes: 2 }
      - { size: 480x480, max_takes: 1 }
    seconds: { one_of: [3, 6] }
    default_seconds: 6
    default_takes: 1
    prompt_chars: { min: 1, max: 200 }
    params:
      - { name: seed, type: integer, min: 0, max: 4294967295 }
      - { name: motion, type: string, one_of: [low, high] }
    price: { currency: USD, per_second: 0.05 }
";

/// A model added in `shotlist.models.yaml` (its own sizes and durations) is validated
/// against, located, and rendered on the emulator, with no code change (issue 8).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_added_in_the_board_models_file_validates_and_renders() {
    let p = Project::new(
        "version: 1\ndefaults:\n  model: lantern-v1\nshots:\n  - id: a\n    prompt: A lantern on a pier.\n    size: 640x360\n    variants: 2\n    params: {seed: 7, motion: low}\n  - id: b\n    prompt: A lantern in the fog.\n    size: 480x480\n    seconds: 3\n",
    );
    std::fs::write(p.path("shotlist.models.yaml"), BOARD_MODELS).unwrap();
    let validate = |manifest: &str| {
        std::fs::write(p.path("check.yaml"), manifest).unwrap();
        Command::new(env!("CARGO_BIN_EXE_shotlist"))
            .current_dir(p.dir.path())
            .args(["validate", "check.yaml"])
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let bad = validate(
        "version: 1\nshots:\n  - id: a\n    prompt: x\n    model: lantern-v1\n    size: 1280x720\n  - id: b\n    prompt: y\n    model: lantern-v1\n    size: 480x480\n    seconds: 5\n  - id: c\n    prompt: z\n    size: 640x360\n  - id: d\n    prompt: w\n    model: lantern-v1\n    size: 480x480\n    params: {sead: 1, motion: medium}\n",
    );
    assert_eq!(code(&bad), 3, "{}", text(&bad));
    for (at, message) in [
        ("check.yaml:6:11", "size 1280x720 needs model `sora`"),
        (
            "check.yaml:11:14",
            "5 seconds is out of range for `lantern-v1`",
        ),
        ("check.yaml:14:11", "size 640x360 needs model `lantern-v1`"),
        (
            "check.yaml:19:14",
            "model `lantern-v1` takes no parameter `sead`",
        ),
        ("check.yaml:19:31", "`motion` is one of: low, high"),
    ] {
        assert!(
            text(&bad).contains(at) && text(&bad).contains(message),
            "{at} {message}: {}",
            text(&bad)
        );
    }

    let catalogue = shotlist::manifest::board_catalogue(p.dir.path()).unwrap();
    let emu = emulator(EmulatorConfig {
        catalogue,
        ..emulator_config()
    })
    .await;
    let out = p.render(&emu, &[]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(stats(&emu).jobs_created, 2);
    for name in ["a.mp4", "a-2.mp4", "b.mp4"] {
        assert!(
            p.path("renders").join(name).is_file(),
            "{name}: {}",
            text(&out)
        );
    }
    let lock = p.lock();
    let inputs = lock.shots["a"].inputs.as_ref().unwrap();
    assert_eq!(inputs.params["seed"], 7);
    assert_eq!(inputs.seconds, 6, "the model's own default");
    assert_eq!(inputs.size.to_string(), "640x360");
    p.assert_outputs_match_lock();

    // A models file that does not hold together is refused, located, before any request.
    std::fs::write(
        p.path("shotlist.models.yaml"),
        BOARD_MODELS.replace("{ one_of: [3, 6] }", "{ min: 9, max: 3 }"),
    )
    .unwrap();
    let out = p.render(&emu, &[]).await;
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert!(
        text(&out).contains("shotlist.models.yaml:9:14") && text(&out).contains("`seconds` is"),
        "{}",
        text(&out)
    );
    assert_eq!(stats(&emu).jobs_created, 2);
    emu.shutdown().await;
}

/// `render --verify` mends what `plan --verify` finds: a video corrupted in place (same
/// size, same mtime) is downloaded again, without a job (issue 7, #5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn render_verify_downloads_a_video_corrupted_in_place_again() {
    let emu = emulator(emulator_config()).await;
    let p = Project::new(&manifest(1, 1, ""));
    assert_eq!(code(&p.render(&emu, &[]).await), 0);
    let path = p.path("renders/s00.mp4");
    let good = std::fs::read(&path).unwrap();
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    std::fs::write(&path, &bad).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    // Without --verify size and mtime are trusted: nothing to do.
    let out = p.render(&emu, &[]).await;
    assert!(text(&out).contains("1 skipped"), "{}", text(&out));
    let jobs = stats(&emu).jobs_created;
    let out = p.render(&emu, &["--verify"]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("1 downloaded"), "{}", text(&out));
    assert_eq!(std::fs::read(&path).unwrap(), good);
    assert_eq!(stats(&emu).jobs_created, jobs, "no new job");
    p.assert_outputs_match_lock();
    emu.shutdown().await;
}

/// Two manifests never share an output folder by accident (issue 7, #8): the second is
/// refused before any request; with `--share-output` it may, when no file name collides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_manifest_is_refused_an_output_folder_another_owns() {
    let emu = emulator(emulator_config()).await;
    let p = Project::new(&manifest(1, 1, ""));
    assert_eq!(code(&p.render(&emu, &[]).await), 0);
    let run = |name: &str, extra: &[&str]| {
        let mut cmd = p.command(&emu, extra);
        cmd.arg(name);
        cmd
    };
    std::fs::write(p.path("other.yaml"), manifest(1, 1, "")).unwrap();
    let requests = stats(&emu).requests_total;
    let mut cmd = run("other.yaml", &[]);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(
        text(&out).contains("holds the renders of `shotlist.yaml`"),
        "{}",
        text(&out)
    );
    assert_eq!(stats(&emu).requests_total, requests, "no request");
    // Sharing is refused while a file name collides (both write s00.mp4)...
    let mut cmd = run("other.yaml", &["--share-output"]);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(text(&out).contains("`s00.mp4`"), "{}", text(&out));
    // ...and allowed when none does.
    std::fs::write(
        p.path("other.yaml"),
        manifest(1, 1, "").replace("id: s00", "id: other"),
    )
    .unwrap();
    let mut cmd = run("other.yaml", &["--share-output"]);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(p.path("renders/other.mp4").is_file() && p.path("renders/s00.mp4").is_file());
    emu.shutdown().await;
}
