//! The engine alone: an in-memory provider (`api/memory.rs`), no HTTP, tokio's paused
//! clock. Each test guards one rule of the module docs and fails without it.

use std::sync::Arc;

use super::*;
use crate::api::memory::{MemoryProvider, Script};
use crate::limits::Api;
use crate::lockfile::Lockfile;
use crate::reporter::{Mode, Reporter};

struct Board {
    dir: tempfile::TempDir,
}

impl Board {
    /// A board of one shot (480x480, 5 s, `variants` takes) on `api`.
    fn new(api: &str, variants: u32) -> Board {
        let dir = tempfile::tempdir().unwrap();
        let size = if api == "azure-jobs" {
            "480x480"
        } else {
            "1280x720"
        };
        let seconds = if api == "azure-jobs" { 5 } else { 4 };
        std::fs::write(
            dir.path().join("shotlist.yaml"),
            format!(
                "version: 1\napi: {api}\nshots:\n  - id: a\n    prompt: A lantern.\n    size: {size}\n    seconds: {seconds}\n    variants: {variants}\n"
            ),
        )
        .unwrap();
        Board { dir }
    }

    fn storyboard(&self) -> Storyboard {
        crate::manifest::load(&self.dir.path().join("shotlist.yaml")).unwrap()
    }

    fn lock(&self) -> Lockfile {
        Lockfile::read(&self.storyboard().lockfile_path()).unwrap()
    }

    /// Plans and runs once, as `render` does.
    async fn render(&self, provider: &Arc<MemoryProvider>, config: Config) -> Report {
        let sb = self.storyboard();
        let lock = self.lock();
        let plan = plan::plan(
            &sb,
            &lock,
            &plan::Options {
                endpoint: "memory".into(),
                verify: false,
                force: config.force,
                only: Vec::new(),
                tags: Vec::new(),
                now: None,
                no_deps: false,
            },
        );
        let recorder = Arc::new(Recorder::new(sb.lockfile_path(), lock));
        let reporter = Arc::new(Reporter::with_output(Mode::Json, Box::new(std::io::sink())));
        let client: crate::api::Client = provider.clone();
        run(
            client,
            sb,
            plan,
            recorder,
            reporter,
            config,
            Arc::new(Stop::default()),
        )
        .await
    }
}

fn memory(api: Api, can_list: bool, script: Script) -> Arc<MemoryProvider> {
    Arc::new(MemoryProvider::new(api, can_list, script))
}

fn config() -> Config {
    Config {
        thumbnails: false,
        ..Config::for_service()
    }
}

fn outcome(report: &Report) -> &Outcome {
    &report.outcomes[0].1
}

fn request() -> JobRequest {
    JobRequest {
        prompt: "A lantern.".into(),
        model: "sora".into(),
        size: crate::limits::Size::new(480, 480),
        seconds: 5,
        variants: 1,
        params: Default::default(),
        fields: Default::default(),
        images: Vec::new(),
    }
}

#[tokio::test(start_paused = true)]
async fn a_create_whose_answer_is_lost_is_found_by_listing_and_not_sent_again() {
    let board = Board::new("azure-jobs", 1);
    let provider = memory(
        Api::AzureJobs,
        true,
        Script {
            lose_create_answers: 1,
            ..Script::default()
        },
    );
    let report = board.render(&provider, config()).await;
    assert_eq!(outcome(&report), &Outcome::Rendered, "{report:?}");
    let c = provider.counters();
    assert_eq!(c.creates, 1, "the lost create was adopted, not repeated");
    assert!(c.lists >= 1);
    assert_eq!(board.lock().shots["a"].jobs[0].id, "mem_1");
}

#[tokio::test(start_paused = true)]
async fn a_crash_between_the_mark_and_the_create_adopts_the_job_the_dead_run_made() {
    let board = Board::new("azure-jobs", 1);
    let provider = memory(Api::AzureJobs, true, Script::default());
    // The dead run: wrote its mark, sent the create, died before recording the answer.
    let sent = jiff::Timestamp::now();
    let mut lock = Lockfile::new();
    let sb = board.storyboard();
    let hash = crate::cache_key::input_hash(sb.api, &sb.shots[0]);
    lock.shots.insert(
        "a".into(),
        lockfile::ShotLock {
            input_hash: hash,
            api: Api::AzureJobs,
            endpoint: "memory".into(),
            model: "sora".into(),
            inputs: None,
            request: serde_json::Value::Null,
            jobs: Vec::new(),
            creating: [(0, sent)].into_iter().collect(),
            source: None,
        },
    );
    lock.write(&sb.lockfile_path()).unwrap();
    let seeded = provider.seed_job(&request(), sent.as_second());

    let report = board.render(&provider, config()).await;
    assert_eq!(outcome(&report), &Outcome::Rendered, "{report:?}");
    assert_eq!(provider.counters().creates, 0, "no second create");
    let entry = &board.lock().shots["a"];
    assert_eq!(entry.jobs[0].id, seeded);
    assert!(entry.creating.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_download_that_fails_five_times_then_works_is_retried_by_one_layer_only() {
    let board = Board::new("azure-jobs", 1);
    let provider = memory(
        Api::AzureJobs,
        true,
        Script {
            failed_downloads: 5,
            ..Script::default()
        },
    );
    let report = board.render(&provider, config()).await;
    assert_eq!(outcome(&report), &Outcome::Rendered, "{report:?}");
    let c = provider.counters();
    assert_eq!((c.creates, c.downloads), (1, 6), "6 attempts, one job");
    let entry = &board.lock().shots["a"];
    let file = entry.jobs[0].generations[0].file.as_ref().unwrap();
    assert_eq!(
        std::fs::read(board.dir.path().join(&file.path)).unwrap(),
        crate::api::memory::VIDEO
    );
    // One more failure than attempts: the shot fails, the job stays recorded for the
    // next run to download, and nothing is created again.
    let board = Board::new("azure-jobs", 1);
    let provider = memory(
        Api::AzureJobs,
        true,
        Script {
            failed_downloads: 6,
            ..Script::default()
        },
    );
    let report = board.render(&provider, config()).await;
    assert!(matches!(outcome(&report), Outcome::Failed(_)), "{report:?}");
    assert_eq!(provider.counters().downloads, 6);
    let report = board.render(&provider, config()).await;
    assert_eq!(outcome(&report), &Outcome::Downloaded, "{report:?}");
    assert_eq!(provider.counters().creates, 1);
}

#[tokio::test(start_paused = true)]
async fn a_storm_of_429s_while_polling_keeps_the_job_and_ends_rendered() {
    let board = Board::new("azure-jobs", 1);
    let provider = memory(
        Api::AzureJobs,
        true,
        Script {
            get_429s: 25,
            polls_to_finish: 3,
            ..Script::default()
        },
    );
    let report = board.render(&provider, config()).await;
    assert_eq!(outcome(&report), &Outcome::Rendered, "{report:?}");
    let c = provider.counters();
    assert_eq!(c.creates, 1, "a 429 never makes a second job");
    assert!(c.gets >= 25 + 3, "{c:?}");
}

#[tokio::test(start_paused = true)]
async fn a_job_whose_content_expires_during_its_download_is_recorded_gone_not_recreated() {
    let board = Board::new("azure-jobs", 1);
    let provider = memory(
        Api::AzureJobs,
        true,
        Script {
            content_expired: true,
            ..Script::default()
        },
    );
    let report = board.render(&provider, config()).await;
    let Outcome::Failed(message) = outcome(&report) else {
        panic!("{report:?}")
    };
    assert!(message.contains("no longer has"), "{message}");
    assert_eq!(
        report.error().map(|e| e.exit_code()),
        Some(crate::exit_codes::SHOTS_FAILED)
    );
    let c = provider.counters();
    assert_eq!(
        (c.creates, c.downloads),
        (1, 1),
        "not retried, not re-created"
    );
    let job = &board.lock().shots["a"].jobs[0];
    assert_eq!(job.status, JobState::Failed);
    assert_eq!(job.failure.as_ref().unwrap().code, "gone");
}

#[tokio::test(start_paused = true)]
async fn a_job_that_never_ends_is_given_up_at_its_expiry() {
    let board = Board::new("azure-jobs", 1);
    let provider = memory(
        Api::AzureJobs,
        true,
        Script {
            never_finish: true,
            expires_after_secs: 3_600,
            ..Script::default()
        },
    );
    // Two days of paused time: without the expiry rule the run would never end.
    let report = tokio::time::timeout(
        Duration::from_secs(2 * 86_400),
        board.render(&provider, config()),
    )
    .await
    .expect("the run ends once the job has expired");
    let Outcome::Failed(message) = outcome(&report) else {
        panic!("{report:?}")
    };
    assert!(message.contains("when it expired"), "{message}");
    let c = provider.counters();
    assert_eq!(c.creates, 1);
    // Polled for an hour of (paused) time at most a minute apart, then stopped.
    assert!((30..=400).contains(&c.gets), "{c:?}");
    let job = &board.lock().shots["a"].jobs[0];
    assert_eq!(job.failure.as_ref().unwrap().code, "expired_unfinished");
}

#[tokio::test(start_paused = true)]
async fn a_provider_that_cannot_list_never_resends_a_lost_create_unless_forced() {
    let board = Board::new("azure-jobs", 1);
    let provider = memory(
        Api::AzureJobs,
        false,
        Script {
            lose_create_answers: 1,
            ..Script::default()
        },
    );
    let report = board.render(&provider, config()).await;
    let Outcome::Failed(message) = outcome(&report) else {
        panic!("{report:?}")
    };
    assert!(message.contains("--force"), "{message}");
    assert_eq!(provider.counters().creates, 1);
    assert!(
        !board.lock().shots["a"].creating.is_empty(),
        "the mark stays"
    );
    // The next run refuses too: the job may exist.
    let report = board.render(&provider, config()).await;
    assert!(matches!(outcome(&report), Outcome::Failed(_)), "{report:?}");
    assert_eq!(provider.counters().creates, 1);
    assert_eq!(provider.counters().lists, 0, "it never pretends to list");
    // The user forces it: one new job.
    let forced = Config {
        force: true,
        ..config()
    };
    let report = board.render(&provider, forced).await;
    assert_eq!(outcome(&report), &Outcome::Rendered, "{report:?}");
    assert_eq!(provider.counters().creates, 2);
}

#[tokio::test(start_paused = true)]
async fn one_job_per_take_where_the_provider_renders_one_take_per_job() {
    let board = Board::new("openai-videos", 3);
    let provider = memory(Api::OpenaiVideos, true, Script::default());
    let report = board.render(&provider, config()).await;
    assert_eq!(outcome(&report), &Outcome::Rendered, "{report:?}");
    assert_eq!(provider.counters().creates, 3);
    let entry = &board.lock().shots["a"];
    let variants: Vec<u32> = entry.jobs.iter().map(|j| j.variant).collect();
    assert_eq!(variants, [1, 2, 3]);
}

#[tokio::test(start_paused = true)]
async fn a_full_disk_fails_the_shot_at_once_with_its_cause_and_keeps_the_job() {
    let board = Board::new("azure-jobs", 1);
    let provider = memory(
        Api::AzureJobs,
        true,
        Script {
            disk_full: true,
            ..Script::default()
        },
    );
    let report = board.render(&provider, config()).await;
    let Outcome::Failed(message) = outcome(&report) else {
        panic!("{report:?}")
    };
    assert!(message.contains("No space left on device"), "{message}");
    assert_eq!(
        provider.counters().downloads,
        1,
        "not retried: the disk stays full"
    );
    let job = &board.lock().shots["a"].jobs[0];
    assert_eq!(
        job.status,
        JobState::Succeeded,
        "the job stays, to download next run"
    );
}

#[tokio::test(start_paused = true)]
async fn an_unknown_status_is_polled_slowly_until_the_job_expires_then_recorded() {
    let board = Board::new("azure-jobs", 1);
    let provider = memory(
        Api::AzureJobs,
        true,
        Script {
            odd_status: Some("warming_up"),
            expires_after_secs: 3_600,
            ..Script::default()
        },
    );
    let report = tokio::time::timeout(
        Duration::from_secs(2 * 86_400),
        board.render(&provider, config()),
    )
    .await
    .expect("the run ends once the job has expired");
    let Outcome::Failed(message) = outcome(&report) else {
        panic!("{report:?}")
    };
    assert!(message.contains("warming_up"), "{message}");
    // An hour at one poll a minute (poll_max), not a poll every few seconds.
    let gets = provider.counters().gets;
    assert!((55..=65).contains(&gets), "{gets} polls");
    let job = &board.lock().shots["a"].jobs[0];
    assert_eq!(job.service_status.as_deref(), Some("warming_up"));
}

#[tokio::test(start_paused = true)]
async fn a_recorded_job_that_is_another_shots_is_not_taken() {
    let board = Board::new("azure-jobs", 1);
    let provider = memory(Api::AzureJobs, true, Script::default());
    // The lockfile says shot `a`'s pending job is one the service made for another prompt.
    let other = JobRequest {
        prompt: "Somebody else's shot.".into(),
        ..request()
    };
    let now = jiff::Timestamp::now();
    let foreign = provider.seed_job(&other, now.as_second());
    let sb = board.storyboard();
    let mut lock = Lockfile::new();
    lock.shots.insert(
        "a".into(),
        lockfile::ShotLock {
            input_hash: crate::cache_key::input_hash(sb.api, &sb.shots[0]),
            api: Api::AzureJobs,
            endpoint: "memory".into(),
            model: "sora".into(),
            inputs: Some(crate::render_inputs::RenderInputs::of(sb.api, &sb.shots[0])),
            request: serde_json::Value::Null,
            jobs: vec![lockfile::JobLock {
                estimated_cost: None,
                run: None,
                id: foreign.clone(),
                variant: 0,
                status: JobState::Pending,
                service_status: None,
                created_at: now,
                finished_at: None,
                expires_at: None,
                failure: None,
                generations: Vec::new(),
            }],
            creating: Default::default(),
            source: None,
        },
    );
    lock.write(&sb.lockfile_path()).unwrap();
    let report = board.render(&provider, config()).await;
    let Outcome::Failed(message) = outcome(&report) else {
        panic!("{report:?}")
    };
    assert!(message.contains("not this shot's"), "{message}");
    assert_eq!(
        provider.counters().downloads,
        0,
        "its videos were not taken"
    );
    let job = &board.lock().shots["a"].jobs[0];
    assert_eq!(job.failure.as_ref().unwrap().code, "not_this_shot");
}

/// An account out of credit stops the run like a refused credential: the shot that met
/// the 402 fails, nothing new starts, and the run ends with its own exit code.
#[tokio::test(start_paused = true)]
async fn out_of_credit_stops_the_run_and_starts_nothing_new() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = String::from("version: 1\napi: openai-videos\nshots:\n");
    for i in 0..4 {
        m.push_str(&format!(
            "  - id: s{i}\n    prompt: Shot {i}.\n    size: 1280x720\n    seconds: 4\n"
        ));
    }
    std::fs::write(dir.path().join("shotlist.yaml"), m).unwrap();
    let board = Board { dir };
    let provider = memory(
        Api::OpenaiVideos,
        true,
        Script {
            credit_for_creates: Some(1),
            ..Script::default()
        },
    );
    let report = board
        .render(
            &provider,
            Config {
                max_jobs: 1,
                ..config()
            },
        )
        .await;
    let error = report.error().expect("the run did not end cleanly");
    assert!(matches!(error, RenderError::OutOfCredit(_)), "{error}");
    assert_eq!(error.exit_code(), crate::exit_codes::OUT_OF_CREDIT);
    assert_eq!(
        provider.counters().creates,
        2,
        "nothing was tried after the 402"
    );
    let done = report
        .outcomes
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Rendered))
        .count();
    let not_started = report
        .outcomes
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::NotStarted))
        .count();
    assert_eq!((done, not_started), (1, 2), "{:?}", report.outcomes);
}

/// The cap counts every create that may have made a job: a lost create whose job never
/// appears is retried only while the retry fits, and the run says the cap stopped it.
#[tokio::test(start_paused = true)]
async fn a_retry_that_would_pass_the_cap_is_not_sent() {
    let board = Board::new("openai-videos", 1);
    let provider = memory(
        Api::OpenaiVideos,
        true,
        Script {
            lose_creates_unsent: 1,
            ..Script::default()
        },
    );
    // One job of sora-2, 4 s at $0.10/s: $0.40. The cap admits one attempt, not two.
    let budget = crate::cost::Budget {
        max: 0.5,
        allow_unknown: false,
    };
    let report = board
        .render(
            &provider,
            Config {
                budget: Some(budget.clone()),
                ..config()
            },
        )
        .await;
    assert_eq!(provider.counters().creates, 1, "the retry was not sent");
    let error = report.error().expect("the cap stopped the shot");
    assert_eq!(error.exit_code(), crate::exit_codes::OVER_BUDGET, "{error}");
    assert_eq!(report.over_budget, ["a"]);
    assert!(
        matches!(outcome(&report), Outcome::Failed(m) if m.contains("cap")),
        "{:?}",
        report.outcomes
    );
    let spend = report.summary.estimated_spend.clone().unwrap();
    assert!((spend.amount - 0.4).abs() < 1e-9, "{spend:?}");

    // With room for both, the retry goes out and the shot renders.
    let provider = memory(
        Api::OpenaiVideos,
        true,
        Script {
            lose_creates_unsent: 1,
            ..Script::default()
        },
    );
    let report = board
        .render(
            &provider,
            Config {
                budget: Some(crate::cost::Budget { max: 0.8, ..budget }),
                ..config()
            },
        )
        .await;
    assert_eq!(provider.counters().creates, 2);
    assert!(report.error().is_none(), "{:?}", report.outcomes);
    assert!((report.summary.estimated_spend.unwrap().amount - 0.8).abs() < 1e-9);
}

/// A take whose create was lost at a provider that cannot list its jobs stays marked
/// when its shot is rendered again: it is never created a second time on its own, and
/// the take that was delivered is not paid for again.
#[tokio::test(start_paused = true)]
async fn a_lost_take_at_a_provider_that_cannot_list_is_never_created_again() {
    let board = Board::new("openai-videos", 2);
    let provider = memory(
        Api::OpenaiVideos,
        false,
        Script {
            lose_create_answers: 1,
            ..Script::default()
        },
    );
    let first = board.render(&provider, config()).await;
    assert!(first.error().is_some());
    assert_eq!(
        provider.counters().creates,
        2,
        "one lost (a job may exist), one made"
    );
    for round in 0..2 {
        let report = board.render(&provider, config()).await;
        assert!(
            report.error().is_some(),
            "round {round}: the lost take still refuses"
        );
        assert_eq!(
            provider.counters().creates,
            2,
            "round {round}: nothing created again"
        );
        let lock = board.lock();
        assert_eq!(
            lock.shots["a"].creating.len(),
            1,
            "round {round}: the mark is kept"
        );
    }
}

/// An outdated job cancelled for a new render stays in the ledger as cancelled (paid
/// for, not delivered), beside the new one.
#[tokio::test(start_paused = true)]
async fn an_outdated_job_cancelled_for_a_new_render_stays_in_the_ledger() {
    let board = Board::new("openai-videos", 1);
    let provider = memory(
        Api::OpenaiVideos,
        true,
        Script {
            never_finish: true,
            ..Script::default()
        },
    );
    // The first job never ends; the run is stopped while it runs.
    let stop = Arc::new(Stop::default());
    let run = {
        let sb = board.storyboard();
        let lock = board.lock();
        let plan = plan::plan(
            &sb,
            &lock,
            &plan::Options {
                endpoint: "memory".into(),
                ..Default::default()
            },
        );
        let recorder = Arc::new(Recorder::new(sb.lockfile_path(), lock));
        let reporter = Arc::new(Reporter::with_output(Mode::Json, Box::new(std::io::sink())));
        let client: crate::api::Client = provider.clone();
        let stop = Arc::clone(&stop);
        tokio::spawn(async move { run(client, sb, plan, recorder, reporter, config(), stop).await })
    };
    tokio::time::sleep(Duration::from_secs(30)).await;
    stop.request();
    let _ = tokio::time::timeout(Duration::from_secs(3600), run).await;
    assert_eq!(
        board.lock().shots["a"].jobs[0].status,
        lockfile::JobState::Pending
    );
    // A new prompt: the old job is cancelled, a new one made.
    let m = std::fs::read_to_string(board.dir.path().join("shotlist.yaml")).unwrap();
    std::fs::write(
        board.dir.path().join("shotlist.yaml"),
        m.replace("A lantern.", "A candle."),
    )
    .unwrap();
    let provider2 = provider.clone();
    let second = tokio::spawn(async move {
        let b = board;
        let _ = tokio::time::timeout(Duration::from_secs(60), b.render(&provider2, config())).await;
        b
    });
    let board = second.await.unwrap();
    assert_eq!(provider.counters().deletes, 1);
    let lock = board.lock();
    assert_eq!(
        lock.ledger.len(),
        2,
        "{}",
        std::fs::read_to_string(board.dir.path().join("shotlist.lock")).unwrap()
    );
    assert_eq!(lock.ledger[0].outcome, lockfile::LedgerOutcome::Cancelled);
    assert!(
        lock.ledger[0]
            .message
            .as_deref()
            .unwrap_or("")
            .contains("outdated")
    );
}
