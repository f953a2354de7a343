//! What it costs (issue 11): estimates in `plan`, the cap before and during `render`,
//! and the ledger `shotlist spend` reads, over the emulator with prices from a test
//! catalogue (the board's own `shotlist.models.yaml`).

use std::process::{Command, Stdio};
use std::time::Duration;

use shotlist::emulator::EmulatorConfig;

use crate::support::*;

/// The board's `sora` at $0.25/s, $0.50/s at 1920x1080 (exact in binary: sums compare).
const PRICED: &str = "version: 1
models:
  - id: sora
    provider: azure-jobs
    provider_model: sora
    sizes:
      - { size: 480x480, max_takes: 4 }
      - { size: 1920x1080, max_takes: 1 }
    seconds: { min: 1, max: 20 }
    default_seconds: 5
    default_takes: 1
    prompt_chars: { min: 1, max: 4000 }
    price:
      currency: USD
      per_second: 0.25
      by_size:
        - { sizes: [1920x1080], per_second: 0.5 }
";

const BOARD: &str = "version: 1
shots:
  - id: a
    prompt: A lantern swinging in the wind.
    size: 480x480
    seconds: 2
  - id: b
    prompt: Two takes of a harbour at dawn.
    size: 480x480
    seconds: 3
    variants: 2
  - id: c
    prompt: A wide shot of the cliffs.
    size: 1920x1080
    seconds: 1
";

/// a: 2 s × 1 × 0.25; b: 3 s × 2 × 0.25; c: 1 s × 1 × 0.5.
const TOTAL: f64 = 2.0 * 0.25 + 3.0 * 2.0 * 0.25 + 0.5;

fn priced_board(board: &str) -> Project {
    let p = Project::new(board);
    std::fs::write(p.path("shotlist.models.yaml"), PRICED).unwrap();
    p
}

fn shotlist_in(p: &Project, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_shotlist"))
        .current_dir(p.dir.path())
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(out)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_totals_are_seconds_times_takes_times_price_and_unknown_is_never_zero() {
    let p = priced_board(BOARD);
    let plan = json(&shotlist_in(&p, &["plan", "--local", "--json"]));
    assert_eq!(plan["totals"]["estimated_cost"], TOTAL);
    assert_eq!(plan["totals"]["currency"], "USD");
    let by_id = |id: &str| {
        plan["shots"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap()["estimated_cost"]
            .clone()
    };
    assert_eq!(
        (by_id("a"), by_id("b"), by_id("c")),
        (0.5.into(), 1.5.into(), 0.5.into())
    );
    let out = shotlist_in(&p, &["plan", "--local"]);
    assert!(
        text(&out).contains("estimated cost to create: $2.50; of the fresh shots: $0.00"),
        "{}",
        text(&out)
    );

    // Rendered, it is worth the same, and nothing is left to create.
    let emu = emulator(emulator_config()).await;
    assert_eq!(code(&p.render(&emu, &[]).await), 0);
    let plan = json(&shotlist_in(
        &p,
        &["plan", "--endpoint", &emu.base_url(), "--json"],
    ));
    assert_eq!(plan["totals"]["estimated_cost"], 0.0);
    assert_eq!(plan["totals"]["fresh_cost"], TOTAL);

    // A deployment name the catalogue does not price: "price unknown", never 0.
    let q = priced_board(&BOARD.replace(
        "    size: 1920x1080\n",
        "    size: 1920x1080\n    model: my-deployment\n",
    ));
    let out = shotlist_in(&q, &["plan", "--local"]);
    let all = text(&out);
    assert!(
        all.contains("price unknown") && all.contains("1 shot of unknown price (c)"),
        "{all}"
    );
    let plan = json(&shotlist_in(&q, &["plan", "--local", "--json"]));
    assert!(plan["shots"][2]["estimated_cost"].is_null(), "{plan}");
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cap_just_below_the_estimate_exits_7_before_any_request() {
    let emu = emulator(emulator_config()).await;
    let p = priced_board(BOARD);
    let out = p.render(&emu, &["--max-cost", "2.49"]).await;
    let all = text(&out);
    assert_eq!(code(&out), 7, "{all}");
    assert!(all.contains("about $2.50, over the cap of $2.49"), "{all}");
    assert!(all.contains("the most expensive: b ~$1.50"), "{all}");
    assert_eq!(
        stats(&emu).requests_total,
        0,
        "no request before the cap is checked"
    );

    // The manifest's budget does the same; the lower of the two wins.
    let q = priced_board(&BOARD.replace("shots:\n", "budget: {max_per_run: 2}\nshots:\n"));
    let out = q.render(&emu, &["--max-cost", "100"]).await;
    assert_eq!(code(&out), 7, "{}", text(&out));
    assert_eq!(stats(&emu).requests_total, 0);

    // An unknown price is over any cap unless allowed.
    let r = priced_board(&BOARD.replace(
        "    size: 1920x1080\n",
        "    size: 1920x1080\n    model: my-deployment\n",
    ));
    let out = r.render(&emu, &["--max-cost", "100"]).await;
    assert_eq!(code(&out), 7, "{}", text(&out));
    assert!(text(&out).contains("no known price (c)"), "{}", text(&out));
    assert_eq!(stats(&emu).requests_total, 0);
    let out = r
        .render(&emu, &["--max-cost", "100", "--allow-unknown-price"])
        .await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(
        text(&out).contains("est. spend $2.00 + 1 job of unknown price"),
        "{}",
        text(&out)
    );

    // At the estimate exactly, it renders, and the summary says what it spent.
    let out = p.render(&emu, &["--max-cost", "2.5"]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("est. spend $2.50"), "{}", text(&out));
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moderated_job_and_an_expired_output_are_wasted_in_spend_and_kept_across_renders() {
    // Jobs take 60–300 emulated seconds and vanish 400 s after creation.
    let emu = emulator(EmulatorConfig {
        moderation_word: Some("forbidden".into()),
        retention: Duration::from_secs(400),
        ..emulator_config()
    })
    .await;
    let p = priced_board(
        "version: 1\nshots:\n  - id: ok\n    prompt: A quiet harbour.\n    size: 480x480\n    seconds: 2\n  - id: bad\n    prompt: A forbidden scene.\n    size: 480x480\n    seconds: 2\n",
    );
    let out = p.render(&emu, &[]).await;
    assert_eq!(code(&out), 6, "{}", text(&out));
    // The video of `ok` is deleted here and expires at the service before the next run.
    std::fs::remove_file(p.path("renders/ok.mp4")).unwrap();
    tokio::time::sleep(Duration::from_secs_f64(600.0 / SCALE)).await;
    let out = p.render(&emu, &[]).await;
    assert_eq!(code(&out), 6, "{}", text(&out));
    let spend = json(&shotlist_in(&p, &["spend", "--json"]));
    assert_eq!(spend["wasted"]["moderated"]["jobs"], 2, "{spend}");
    assert_eq!(spend["wasted"]["expired"]["jobs"], 1, "{spend}");
    assert_eq!(spend["wasted"]["expired"]["amount"], 0.5, "{spend}");
    assert_eq!(spend["spent"]["jobs"], stats(&emu).jobs_created, "{spend}");
    let wasted = spend["wasted_jobs"].as_array().unwrap();
    assert!(
        wasted
            .iter()
            .any(|j| j["outcome"] == "moderated"
                && j["message"].as_str().is_some_and(|m| !m.is_empty())),
        "{spend}"
    );
    // Rendered anew, the expired job stays in the ledger beside the new one.
    let out = p.render(&emu, &["shotlist.yaml", "ok"]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    let spend = json(&shotlist_in(&p, &["spend", "--json"]));
    assert_eq!(spend["by_shot"]["ok"]["spent"]["jobs"], 2, "{spend}");
    assert_eq!(spend["by_shot"]["ok"]["delivered"]["jobs"], 1, "{spend}");
    assert_eq!(spend["wasted"]["expired"]["jobs"], 1, "{spend}");
    let out = shotlist_in(&p, &["spend"]);
    assert!(
        text(&out).contains("paid for and not delivered"),
        "{}",
        text(&out)
    );
    let out = shotlist_in(&p, &["spend", "--since", "2999-01-01", "--json"]);
    assert_eq!(json(&out)["spent"]["jobs"], 0);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_survives_kill_9_and_reruns_without_counting_a_job_twice() {
    let emu = emulator(EmulatorConfig {
        seed: 9,
        faults: "slow=0.5,slow-ms=300".parse().unwrap(),
        ..emulator_config()
    })
    .await;
    let mut board = String::from("version: 1\nshots:\n");
    for i in 0..6 {
        board.push_str(&format!(
            "  - id: s{i}\n    prompt: Shot {i} of the storm.\n    size: 480x480\n    seconds: 2\n"
        ));
    }
    let p = priced_board(&board);
    let mut rng = fastrand::Rng::with_seed(5);
    for _ in 0..4 {
        let mut cmd = p.command(&emu, &[]);
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        tokio::time::sleep(Duration::from_millis(rng.u64(150..1000))).await;
        child.kill().unwrap();
        let _ = child.wait();
    }
    assert_eq!(code(&p.render(&emu, &[]).await), 0);
    assert_eq!(code(&p.render(&emu, &[]).await), 0);
    let spend = json(&shotlist_in(&p, &["spend", "--json"]));
    let created = stats(&emu).jobs_created;
    assert_eq!(spend["spent"]["jobs"], created, "{spend}");
    assert_eq!(spend["delivered"]["jobs"], 6, "{spend}");
    assert_eq!(spend["spent"]["amount"], created as f64 * 0.5, "{spend}");
    let lock = p.lock();
    let mut ids: Vec<&str> = lock.ledger.iter().map(|e| e.job.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), lock.ledger.len(), "a job twice in the ledger");
    emu.shutdown().await;
}
