//! Shots that start from other shots' frames, through the real binary against the
//! emulator, on the Azure jobs API and on Replicate: a chain renders in order, each shot
//! from the frame the one before it ended on (the emulator saw exactly that image); an
//! edit upstream re-renders the shots downstream and nothing else, and `plan` says so
//! first; an edit at the end re-renders only the end; cycles are refused at each edge; a
//! kill mid-chain pays for no job twice.

use std::process::Stdio;
use std::time::Duration;

use sha2::Digest;
use shotlist::emulator::EmulatorConfig;
use shotlist::lockfile::JobState;

use crate::support::*;

/// The two protocols of the proof: their API, and a model that starts from an image.
const CHAINS: [(&str, &str); 2] = [("azure-jobs", "sora"), ("replicate", "seedance-2.0")];

/// `opening` → `approach` (from its last frame) → `inside` (from `approach`'s last frame),
/// and `aside`, which starts from nothing.
fn chain(api: &str, model: &str, opening: &str) -> String {
    format!(
        "version: 1
api: {api}
defaults:
  model: {model}
  size: 480x480
  seconds: 4
shots:
  - id: opening
    prompt: {opening}
  - id: approach
    prompt: The keeper walks up the path to the door.
    image: {{shot: opening, frame: last}}
  - id: inside
    prompt: Inside, the keeper lights the lamp.
    image: {{shot: approach}}
  - id: aside
    prompt: Gulls over the rocks, unrelated to the keeper.
"
    )
}

fn sha256_of(path: &std::path::Path) -> String {
    shotlist::cache_key::hex(&sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

fn plan_json(p: &Project, emu: &shotlist::emulator::Emulator) -> serde_json::Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shotlist"))
        .current_dir(p.dir.path())
        .args(["plan", "--json", "--endpoint", &emu.base_url()])
        .env("AZURE_OPENAI_API_KEY", KEY)
        .env("REPLICATE_API_TOKEN", KEY)
        .env_remove("SHOTLIST_ENDPOINT")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Each shot's action in a plan, by id.
fn actions(plan: &serde_json::Value) -> Vec<(String, String)> {
    plan["shots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_owned(),
                s["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn job_of(p: &Project, shot: &str) -> String {
    let lock = p.lock();
    let jobs = &lock.shots[shot].jobs;
    assert_eq!(jobs.len(), 1, "{shot}: {jobs:?}");
    assert_eq!(jobs[0].status, JobState::Succeeded, "{shot}");
    jobs[0].id.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_renders_in_order_from_each_last_frame_and_reruns_only_what_changed() {
    for (api, model) in CHAINS {
        let emu = emulator(emulator_config()).await;
        let p = Project::new(&chain(api, model, "A lighthouse at dusk, wide."));
        let out = p.render(&emu, &[]).await;
        assert_eq!(code(&out), 0, "{api}: {}", text(&out));
        assert_eq!(stats(&emu).jobs_created, 4, "{api}");
        p.assert_outputs_match_lock();
        p.assert_no_key_in_files();

        // In order: each job of the chain was created after the video it starts from
        // was saved, from exactly that video's last frame.
        let lock = p.lock();
        let s = stats(&emu);
        for (up, down) in [("opening", "approach"), ("approach", "inside")] {
            let frame_rel = format!("renders/frames/{up}-take1-last.png");
            let frame = &lock.frames[&frame_rel];
            assert_eq!(frame.shot, up);
            assert_eq!(
                frame.video_sha256,
                lock.shots[up].video_of(1).unwrap().sha256
            );
            assert_eq!(frame.file.sha256, sha256_of(&p.path(&frame_rel)), "{api}");
            let sent = &s.input_images[&job_of(&p, down)];
            assert_eq!(sent.len(), 1, "{api} {down}: {sent:?}");
            assert_eq!(sent[0].role, "first_frame", "{api} {down}");
            assert_eq!(
                sent[0].sha256, frame.file.sha256,
                "{api}: `{down}` was not sent `{up}`'s last frame"
            );
            assert_eq!((sent[0].width, sent[0].height), (480, 480), "{api}");
            let up_job = &lock.shots[up].jobs[0];
            let down_job = &lock.shots[down].jobs[0];
            assert!(
                down_job.created_at >= up_job.created_at,
                "{api}: `{down}` was created before `{up}`"
            );
        }
        assert!(!s.input_images.contains_key(&job_of(&p, "aside")), "{api}");
        assert!(
            !s.input_images.contains_key(&job_of(&p, "opening")),
            "{api}"
        );

        // Nothing changed: nothing is rendered, no frame taken again.
        let again = p.render(&emu, &[]).await;
        assert_eq!(code(&again), 0, "{api}: {}", text(&again));
        assert_eq!(stats(&emu).jobs_created, 4, "{api}: {}", text(&again));

        // The first shot's prompt edited: plan says the chain renders, the rest is fresh.
        std::fs::write(
            p.path("shotlist.yaml"),
            chain(api, model, "A lighthouse at dawn, wide."),
        )
        .unwrap();
        let plan = plan_json(&p, &emu);
        assert_eq!(
            actions(&plan),
            [
                ("opening".to_owned(), "render".to_owned()),
                ("approach".to_owned(), "render".to_owned()),
                ("inside".to_owned(), "render".to_owned()),
                ("aside".to_owned(), "fresh".to_owned()),
            ],
            "{api}: {plan}"
        );
        let reason = |i: usize| plan["shots"][i]["reason"].clone();
        assert_eq!(reason(1)["kind"], "upstream", "{api}: {plan}");
        assert_eq!(reason(1)["shot"], "opening", "{api}: {plan}");
        assert_eq!(reason(2)["shot"], "approach", "{api}: {plan}");
        let text_plan = std::process::Command::new(env!("CARGO_BIN_EXE_shotlist"))
            .current_dir(p.dir.path())
            .args(["plan", "--endpoint", &emu.base_url()])
            .env("AZURE_OPENAI_API_KEY", KEY)
            .env("REPLICATE_API_TOKEN", KEY)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert!(
            text(&text_plan).contains("upstream `opening` changed"),
            "{api}: {}",
            text(&text_plan)
        );
        let before = p.lock();
        let out = p.render(&emu, &[]).await;
        assert_eq!(code(&out), 0, "{api}: {}", text(&out));
        assert_eq!(stats(&emu).jobs_created, 7, "{api}: {}", text(&out));
        let after = p.lock();
        for id in ["opening", "approach", "inside"] {
            assert_ne!(
                before.shots[id].input_hash, after.shots[id].input_hash,
                "{api}: {id}"
            );
        }
        assert_eq!(before.shots["aside"], after.shots["aside"], "{api}");
        // The new frame is the one sent.
        let frame = &after.frames["renders/frames/opening-take1-last.png"];
        assert_eq!(
            stats(&emu).input_images[&job_of(&p, "approach")][0].sha256,
            frame.file.sha256,
            "{api}"
        );
        p.assert_outputs_match_lock();

        // The last shot edited: it alone renders.
        let edited = chain(api, model, "A lighthouse at dawn, wide.").replace(
            "Inside, the keeper lights the lamp.",
            "Inside, the keeper trims the wick.",
        );
        std::fs::write(p.path("shotlist.yaml"), edited).unwrap();
        let plan = plan_json(&p, &emu);
        let rendering: Vec<String> = actions(&plan)
            .into_iter()
            .filter(|(_, a)| a != "fresh")
            .map(|(id, _)| id)
            .collect();
        assert_eq!(rendering, ["inside"], "{api}: {plan}");
        let out = p.render(&emu, &[]).await;
        assert_eq!(code(&out), 0, "{api}: {}", text(&out));
        assert_eq!(stats(&emu).jobs_created, 8, "{api}: {}", text(&out));
        p.assert_outputs_match_lock();
        emu.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rendering_one_shot_renders_its_stale_upstream_first_and_no_deps_refuses_without_it() {
    let emu = emulator(emulator_config()).await;
    let p = Project::new(&chain("azure-jobs", "sora", "A lighthouse at dusk, wide."));
    // `--no-deps` with nothing rendered upstream: refused before any request.
    let out = p
        .render(&emu, &["shotlist.yaml", "approach", "--no-deps"])
        .await;
    assert_ne!(code(&out), 0, "{}", text(&out));
    assert!(
        text(&out).contains("needs a frame of `opening` (take 1), which is not rendered"),
        "{}",
        text(&out)
    );
    assert_eq!(stats(&emu).jobs_created, 0);
    // Like make: `inside` needs `approach`, which needs `opening`.
    let out = p.render(&emu, &["shotlist.yaml", "inside"]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(stats(&emu).jobs_created, 3, "{}", text(&out));
    let lock = p.lock();
    assert!(!lock.shots.contains_key("aside"));
    // With its upstream on disk, `--no-deps` renders the named shot from it, even when
    // that upstream is stale.
    std::fs::write(
        p.path("shotlist.yaml"),
        chain("azure-jobs", "sora", "A lighthouse at night, wide.").replace(
            "The keeper walks up the path to the door.",
            "The keeper runs up the path to the door.",
        ),
    )
    .unwrap();
    let out = p
        .render(&emu, &["shotlist.yaml", "approach", "--no-deps"])
        .await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(stats(&emu).jobs_created, 4, "{}", text(&out));
    emu.shutdown().await;
}

#[test]
fn a_cycle_is_refused_with_the_line_of_each_edge() {
    let p = Project::new(
        "version: 1
defaults: {size: 480x480, seconds: 4}
shots:
  - id: a
    prompt: one
    image: {shot: c}
  - id: b
    prompt: two
    image: {shot: a}
  - id: c
    prompt: three
    last_frame: {shot: b, frame: first}
  - id: d
    prompt: four
    image: {shot: nowhere}
",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shotlist"))
        .current_dir(p.dir.path())
        .args(["validate"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(code(&out), 3, "{all}");
    assert!(all.contains("waits for itself through"), "{all}");
    // Each edge of the cycle at its line: a→c on line 6, b→a on 9, c→b on 12.
    for (line, edge) in [
        (6, "`a` waits for `c`"),
        (9, "`b` waits for `a`"),
        (12, "`c` waits for `b`"),
    ] {
        assert!(all.contains(edge), "{edge}: {all}");
        assert!(
            all.contains(&format!("shotlist.yaml:{line}:")) || all.contains(&format!(" {line} │")),
            "line {line}: {all}"
        );
    }
    assert!(all.contains("no shot `nowhere`"), "{all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_chain_then_rerun_pays_for_no_job_twice() {
    for (api, model) in CHAINS {
        let emu = emulator(EmulatorConfig {
            seed: 5,
            faults: "slow=0.5,slow-ms=200".parse().unwrap(),
            ..emulator_config()
        })
        .await;
        let p = Project::new(&chain(api, model, "A lighthouse at dusk, wide."));
        let mut rng = fastrand::Rng::with_seed(23);
        for round in 0..4 {
            let mut cmd = p.command(&emu, &[]);
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
            let mut child = cmd.spawn().unwrap();
            tokio::time::sleep(Duration::from_millis(rng.u64(300..1500))).await;
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
        let out = p.render(&emu, &[]).await;
        let s = stats(&emu);
        assert_eq!(code(&out), 0, "{api}: {}", text(&out));
        assert!(
            s.creates_by_prompt_hash.values().all(|&n| n == 1),
            "{api}: a job was paid twice: {s:?}"
        );
        assert_eq!(s.creates_by_prompt_hash.len(), 4, "{api}: {s:?}");
        p.assert_outputs_match_lock();
        // The chain still holds: `approach` was sent `opening`'s last frame.
        let lock = p.lock();
        let frame = &lock.frames["renders/frames/opening-take1-last.png"];
        assert_eq!(
            s.input_images[&job_of(&p, "approach")][0].sha256,
            frame.file.sha256,
            "{api}"
        );
        emu.shutdown().await;
    }
}
