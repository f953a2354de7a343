//! The shared render cache against real object stores on loopback (see `stores.rs`):
//! Azurite for Azure Blob, moto's server for S3, and a local folder. Each "machine" is a
//! clone of a board in its own folder rendering against its own emulator, so the
//! emulator's counts say what each one paid for.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::stores::{Kind, REALM, STORE_SECRET, Store};
use crate::support::*;
use shotlist::emulator::Emulator;

const SIGNING_KEY: &str = "team-signing-key-Hq3Vw8Rt";

fn cache_command(p: &Project, emu: &Emulator, store: &Store, extra: &[&str]) -> Command {
    let mut args = vec!["--cache", store.url.as_str(), "--no-sheet"];
    args.extend_from_slice(extra);
    let mut cmd = p.command(emu, &args);
    store.apply(&mut cmd);
    cmd
}

async fn render(p: &Project, emu: &Emulator, store: &Store, extra: &[&str]) -> Output {
    run(cache_command(p, emu, store, extra)).await
}

async fn run(mut cmd: Command) -> Output {
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert_no_key(&out);
    assert!(
        !contains(&out.stdout, STORE_SECRET.as_bytes())
            && !contains(&out.stderr, STORE_SECRET.as_bytes()),
        "the storage secret leaked: {}",
        text(&out)
    );
    out
}

/// `shotlist plan --json` with the cache, as JSON.
async fn plan(p: &Project, emu: &Emulator, store: &Store, extra: &[&str]) -> serde_json::Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shotlist"));
    cmd.current_dir(p.dir.path())
        .args(["plan", "--json", "--endpoint", &emu.base_url()])
        .args(["--cache", &store.url])
        .args(extra)
        .env("AZURE_OPENAI_API_KEY", KEY);
    store.apply(&mut cmd);
    let out = run(cmd).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `N published` from a render's summary.
fn published(out: &Output) -> u64 {
    let all = text(out);
    let at = all
        .find(" published (")
        .unwrap_or_else(|| panic!("no summary: {all}"));
    all[..at].rsplit(' ').next().unwrap().parse().unwrap()
}

/// Nothing a run wrote, here or in the cache, holds a credential.
async fn assert_no_secret_anywhere(projects: &[&Project], store: &Store) {
    for p in projects {
        p.assert_no_key_in_files();
        for f in walk(p.dir.path()) {
            assert!(
                !contains(&std::fs::read(&f).unwrap(), STORE_SECRET.as_bytes()),
                "the storage secret leaked into {}",
                f.display()
            );
        }
    }
    for key in store.keys().await {
        let bytes = store.get(&key).await;
        for secret in [KEY, STORE_SECRET, SIGNING_KEY] {
            assert!(
                !contains(&bytes, secret.as_bytes()),
                "a secret leaked into the cache's {key}"
            );
        }
    }
}

/// The first machine renders and publishes the example; a clean clone on a second
/// machine then renders every shot from the cache with no job and no request at all.
async fn two_machines(kind: Kind) {
    let store = Store::start(kind).await;
    let (emu_a, emu_b) = (
        emulator(emulator_config()).await,
        emulator(emulator_config()).await,
    );
    let a = Project::example();
    let out = render(&a, &emu_a, &store, &[]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    let shots = a.lock().shots.len();
    assert_eq!(shots, 8);
    assert!(stats(&emu_a).jobs_created >= 8);
    assert_eq!(published(&out), 8, "{}", text(&out));
    assert_eq!(store.entries().await.len(), 8, "{:?}", store.keys().await);
    store.assert_consistent().await;

    // The clone: `plan` says every shot is a hit (and no job to create); `--offline`
    // looks nothing up.
    let b = Project::example();
    let planned = plan(&b, &emu_b, &store, &[]).await;
    for s in planned["shots"].as_array().unwrap() {
        assert_eq!(s["cache"]["status"], "hit", "{s}");
    }
    assert_eq!(planned["totals"]["jobs_to_create"], 0);
    assert_eq!(planned["totals"]["cache_hits"], 8);
    let offline = plan(&b, &emu_b, &store, &["--offline"]).await;
    assert!(
        offline["shots"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s.get("cache").is_none())
    );
    assert!(offline["totals"]["jobs_to_create"].as_u64().unwrap() >= 8);

    let out = render(&b, &emu_b, &store, &[]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    let s = stats(&emu_b);
    assert_eq!(s.jobs_created, 0, "{s:?}");
    assert_eq!(
        s.requests_total, 0,
        "a hit asks the provider nothing: {s:?}"
    );
    assert!(text(&out).contains("cache: 8 hits"), "{}", text(&out));
    b.assert_outputs_match_lock();
    let (lock_a, lock_b) = (a.lock(), b.lock());
    for (id, shot) in &lock_b.shots {
        let source = shot.source.as_ref().expect("recorded as from the cache");
        assert_eq!(source.kind, "cache");
        assert_eq!(source.from, store.url);
        let theirs = &lock_a.shots[id];
        assert_eq!(shot.input_hash, theirs.input_hash);
        // The original job ids, and the very same bytes.
        let ids = |l: &shotlist::lockfile::ShotLock| -> Vec<String> {
            l.jobs.iter().map(|j| j.id.clone()).collect()
        };
        assert_eq!(ids(shot), ids(theirs), "{id}");
        for take in 1..=2 {
            assert_eq!(
                shot.video_of(take).map(|f| &f.sha256),
                theirs.video_of(take).map(|f| &f.sha256),
                "{id} take {take}"
            );
        }
    }
    // Paid for by the first machine only.
    assert!(lock_b.ledger.is_empty(), "{:?}", lock_b.ledger);
    assert!(!lock_a.ledger.is_empty());

    // Fresh now, and nothing is published twice.
    let again = render(&b, &emu_b, &store, &[]).await;
    assert_eq!(code(&again), 0, "{}", text(&again));
    assert_eq!(stats(&emu_b).requests_total, 0);
    assert_eq!(store.entries().await.len(), 8);
    assert_no_secret_anywhere(&[&a, &b], &store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_machines_share_a_local_folder_cache() {
    two_machines(Kind::Folder).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_machines_share_an_s3_cache_on_moto() {
    two_machines(Kind::S3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_machines_share_an_azure_blob_cache_on_azurite() {
    two_machines(Kind::Azure).await;
}

/// Two renders of the same shots publish at the same moment: each entry is written once
/// (the first writer wins, the other is told), and every entry names blobs that are there.
async fn concurrent_publishers(kind: Kind) {
    let store = Store::start(kind).await;
    let board = manifest(5, 3, "");
    let (a, b) = (Project::new(&board), Project::new(&board));
    let (emu_a, emu_b) = (
        emulator(emulator_config()).await,
        emulator(emulator_config()).await,
    );
    // Both wait between their blobs and their entries, so both try to write every entry.
    let mut ca = cache_command(&a, &emu_a, &store, &[]);
    let mut cb = cache_command(&b, &emu_b, &store, &[]);
    ca.env("SHOTLIST_TEST_PUBLISH_PAUSE_MS", "400");
    cb.env("SHOTLIST_TEST_PUBLISH_PAUSE_MS", "400");
    let (oa, ob) = tokio::join!(run(ca), run(cb));
    assert_eq!(code(&oa), 0, "{}", text(&oa));
    assert_eq!(code(&ob), 0, "{}", text(&ob));
    // Both rendered (the cache was empty when they looked).
    assert_eq!(stats(&emu_a).jobs_created, 5);
    assert_eq!(stats(&emu_b).jobs_created, 5);
    assert_eq!(
        published(&oa) + published(&ob),
        5,
        "each entry is created once:\n{}\n{}",
        text(&oa),
        text(&ob)
    );
    assert!(
        text(&oa).contains("already in the cache") || text(&ob).contains("already in the cache")
    );
    assert_eq!(store.entries().await.len(), 5);
    store.assert_consistent().await;
    // Each entry is one run's whole render: its jobs and its files.
    let (la, lb) = (a.lock(), b.lock());
    for key in store.entries().await {
        let stored: serde_json::Value = serde_json::from_slice(&store.get(&key).await).unwrap();
        let job = stored["entry"]["jobs"][0]["id"].as_str().unwrap();
        let video = stored["entry"]["jobs"][0]["generations"][0]["video"]["sha256"]
            .as_str()
            .unwrap();
        let owner = [&la, &lb]
            .into_iter()
            .flat_map(|l| l.shots.values())
            .find(|s| s.jobs.iter().any(|j| j.id == job))
            .unwrap_or_else(|| panic!("{key}: job {job} is neither run's"));
        assert_eq!(owner.video_of(1).unwrap().sha256, video, "{key}");
    }
    // A third machine takes all five.
    let c = Project::new(&board);
    let emu_c = emulator(emulator_config()).await;
    let out = render(&c, &emu_c, &store, &[]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(stats(&emu_c).jobs_created, 0);
    c.assert_outputs_match_lock();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishers_leave_one_entry_on_s3() {
    concurrent_publishers(Kind::S3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishers_leave_one_entry_on_azure_blob() {
    concurrent_publishers(Kind::Azure).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishers_leave_one_entry_in_a_folder() {
    concurrent_publishers(Kind::Folder).await;
}

/// A blob whose bytes do not match its name (same length, so only the hash tells) is
/// never used: that shot is rendered, the others are taken, nothing bad reaches disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_blob_is_detected_and_not_used() {
    let store = Store::start(Kind::S3).await;
    let board = manifest(3, 3, "");
    let a = Project::new(&board);
    let emu_a = emulator(emulator_config()).await;
    let out = render(&a, &emu_a, &store, &[]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    let victim = a.lock().shots["s01"].video_of(1).unwrap().sha256.clone();
    let mut bytes = store.get(&format!("{REALM}cas/{victim}")).await;
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 64] {
        *b ^= 0x5a;
    }
    store
        .put(&format!("{REALM}cas/{victim}"), bytes.clone())
        .await;

    let b = Project::new(&board);
    let emu_b = emulator(emulator_config()).await;
    // Under --locked the plan counted it as a hit; taking it fails, and no job is made.
    let out = render(&b, &emu_b, &store, &["--locked"]).await;
    assert_eq!(code(&out), 6, "{}", text(&out));
    assert!(
        text(&out).contains("--locked: not taken from the cache"),
        "{}",
        text(&out)
    );
    assert_eq!(stats(&emu_b).jobs_created, 0);
    let out = render(&b, &emu_b, &store, &[]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains(&format!("blob {victim} does not match its name")),
        "{all}"
    );
    assert_eq!(
        stats(&emu_b).jobs_created,
        1,
        "only the damaged shot: {all}"
    );
    b.assert_outputs_match_lock();
    let lock = b.lock();
    assert!(lock.shots["s01"].source.is_none(), "s01 was rendered");
    assert!(lock.shots["s00"].from_cache() && lock.shots["s02"].from_cache());
    let on_disk = std::fs::read(b.path(&lock.shots["s01"].video_of(1).unwrap().path)).unwrap();
    assert_ne!(on_disk, bytes, "the damaged bytes never reach the board");
    // No temporary file left behind.
    assert!(
        walk(&b.path("renders"))
            .iter()
            .all(|f| !f.to_string_lossy().contains(".shotlist-cache-")),
        "{:?}",
        walk(&b.path("renders"))
    );
}

/// With a signing key, what is published is signed; an entry changed afterwards, one
/// signed with another key, or one not signed at all is refused, and rendered instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_signing_key_a_tampered_entry_is_refused() {
    let store = Store::start(Kind::Azure).await;
    let board = manifest(3, 3, "");
    let a = Project::new(&board);
    let emu_a = emulator(emulator_config()).await;
    let mut cmd = cache_command(&a, &emu_a, &store, &[]);
    cmd.env("SHOTLIST_CACHE_SIGNING_KEY", SIGNING_KEY);
    let out = run(cmd).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    let entries = store.entries().await;
    assert_eq!(entries.len(), 3);
    for key in &entries {
        let stored: serde_json::Value = serde_json::from_slice(&store.get(key).await).unwrap();
        assert!(
            stored["signature"]
                .as_str()
                .is_some_and(|s| s.starts_with("hmac-sha256:")),
            "{stored}"
        );
    }
    // Tamper with one: its first video now points at another shot's blob.
    let lock = a.lock();
    let (victim_hash, other_video) = (
        lock.shots["s01"].input_hash.clone(),
        lock.shots["s02"].video_of(1).unwrap().clone(),
    );
    let victim_key = format!("{REALM}ac/{}", victim_hash.trim_start_matches("sha256:"));
    let mut stored: serde_json::Value =
        serde_json::from_slice(&store.get(&victim_key).await).unwrap();
    stored["entry"]["jobs"][0]["generations"][0]["video"]["sha256"] =
        other_video.sha256.clone().into();
    stored["entry"]["jobs"][0]["generations"][0]["video"]["bytes"] = other_video.bytes.into();
    store
        .put(&victim_key, serde_json::to_vec(&stored).unwrap())
        .await;

    // The right key: the tampered entry is refused, the others are taken.
    let b = Project::new(&board);
    let emu_b = emulator(emulator_config()).await;
    let mut cmd = cache_command(&b, &emu_b, &store, &[]);
    cmd.env("SHOTLIST_CACHE_SIGNING_KEY", SIGNING_KEY);
    let out = run(cmd).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(
        text(&out).contains("`s01`: cache entry refused: its signature does not match"),
        "{}",
        text(&out)
    );
    assert_eq!(stats(&emu_b).jobs_created, 1);
    b.assert_outputs_match_lock();
    assert_ne!(
        b.lock().shots["s01"].video_of(1).unwrap().sha256,
        other_video.sha256,
        "s01 never gets s02's video"
    );

    // Another key: nothing is taken.
    let c = Project::new(&board);
    let emu_c = emulator(emulator_config()).await;
    let mut cmd = cache_command(&c, &emu_c, &store, &["--cache-read-only"]);
    cmd.env("SHOTLIST_CACHE_SIGNING_KEY", "someone-elses-key-0000");
    let out = run(cmd).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(stats(&emu_c).jobs_created, 3, "{}", text(&out));

    // An unsigned entry, read with a key set: refused.
    let d = Project::new(&manifest(1, 4, ""));
    let emu_d = emulator(emulator_config()).await;
    let out = render(&d, &emu_d, &store, &[]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    let e = Project::new(&manifest(1, 4, ""));
    let emu_e = emulator(emulator_config()).await;
    let mut cmd = cache_command(&e, &emu_e, &store, &[]);
    cmd.env("SHOTLIST_CACHE_SIGNING_KEY", SIGNING_KEY);
    let out = run(cmd).await;
    assert!(
        text(&out).contains("it is not signed, and a signing key is set"),
        "{}",
        text(&out)
    );
    assert_eq!(stats(&emu_e).jobs_created, 1);
    assert_no_secret_anywhere(&[&a, &b, &c, &d, &e], &store).await;
}

/// A pull request's CI, with no provider credential at all: when every shot to render is
/// in the cache, the render needs none (nothing is sent); when one is not, it stops
/// before any request, as without a cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shot_in_the_cache_needs_no_provider_credential() {
    let store = Store::start(Kind::Folder).await;
    let board = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/replicate.yaml"),
    )
    .unwrap();
    let a = Project::new(&board);
    let emu = emulator(emulator_config()).await;
    let out = render(&a, &emu, &store, &[]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(store.entries().await.len(), 3);

    let b = Project::new(&board);
    let emu_b = emulator(emulator_config()).await;
    let mut cmd = cache_command(&b, &emu_b, &store, &["--cache-read-only"]);
    cmd.env_remove("REPLICATE_API_TOKEN");
    let out = run(cmd).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(
        text(&out).contains("every shot to render is in the cache, and nothing is sent"),
        "{}",
        text(&out)
    );
    assert_eq!(stats(&emu_b).requests_total, 0);
    b.assert_outputs_match_lock();

    // One shot more, not in the cache: refused as before, nothing sent.
    let c = Project::new(&board.replace(
        "  - id: dunes\n",
        "  - id: extra\n    prompt: A gull over the surf.\n  - id: dunes\n",
    ));
    let mut cmd = cache_command(&c, &emu_b, &store, &[]);
    cmd.env_remove("REPLICATE_API_TOKEN");
    let out = run(cmd).await;
    assert_eq!(code(&out), 5, "{}", text(&out));
    assert!(text(&out).contains("no credential"), "{}", text(&out));
    assert_eq!(stats(&emu_b).requests_total, 0);
}

/// `--cache-read-only` takes from the cache and writes nothing to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_publishes_nothing() {
    let store = Store::start(Kind::Folder).await;
    let board = manifest(3, 3, "");
    let a = Project::new(&board);
    let emu = emulator(emulator_config()).await;
    let out = render(&a, &emu, &store, &["--cache-read-only"]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(
        text(&out).contains("read-only, nothing published"),
        "{}",
        text(&out)
    );
    assert_eq!(store.keys().await, Vec::<String>::new());
    // Once published by a trusted run, a read-only one takes it.
    let b = Project::new(&board);
    let out = render(&b, &emu, &store, &[]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    let keys = store.keys().await;
    let c = Project::new(&board);
    let emu_c = emulator(emulator_config()).await;
    let out = render(&c, &emu_c, &store, &["--cache-read-only"]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(stats(&emu_c).jobs_created, 0);
    assert_eq!(store.keys().await, keys, "a read-only run changes nothing");
}

/// `kill -9` while a render publishes (its blobs uploaded, its entry not yet): no entry
/// is left without its blobs, and a later publish of the same shots completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_publish_leaves_no_entry_without_its_blobs() {
    let store = Store::start(Kind::S3).await;
    let board = manifest(3, 3, "");
    let a = Project::new(&board);
    let emu = emulator(emulator_config()).await;
    let mut cmd = cache_command(&a, &emu, &store, &[]);
    cmd.env("SHOTLIST_TEST_PUBLISH_PAUSE_MS", "60000")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    // Wait until every shot's blobs are up: each publish then waits before its entry.
    let started = Instant::now();
    loop {
        let blobs = store.blobs().await.len();
        if blobs >= 6 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "only {blobs} blobs published"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait();
    assert_eq!(store.entries().await, Vec::<String>::new());
    store.assert_consistent().await;
    // The board's own renders are safe, and `cache push` publishes them whole.
    a.assert_outputs_match_lock();
    let out = render(&a, &emu, &store, &[]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(stats(&emu).jobs_created, 3, "fresh: nothing paid twice");
    assert!(
        store.entries().await.is_empty(),
        "render publishes what it renders only"
    );
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shotlist"));
    cmd.current_dir(a.dir.path()).args([
        "cache",
        "push",
        "--endpoint",
        &emu.base_url(),
        "--cache",
        &store.url,
    ]);
    store.apply(&mut cmd);
    let out = run(cmd).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("3 published"), "{}", text(&out));
    assert_eq!(store.entries().await.len(), 3);
    store.assert_consistent().await;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shotlist"));
    cmd.current_dir(a.dir.path()).args([
        "cache",
        "push",
        "--endpoint",
        &emu.base_url(),
        "--cache",
        &store.url,
    ]);
    store.apply(&mut cmd);
    let out = run(cmd).await;
    assert!(text(&out).contains("0 published"), "{}", text(&out));
    assert!(text(&out).contains("3 already there"), "{}", text(&out));
    let c = Project::new(&board);
    let emu_c = emulator(emulator_config()).await;
    let out = render(&c, &emu_c, &store, &[]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(stats(&emu_c).jobs_created, 0);
}

/// The built-in emulator's placeholders go to a realm of their own (`emulator/`), with
/// those of any service on loopback (a standalone emulator, a mock): nothing they make
/// is ever under the real providers' `ac/` and `cas/`. (That a service's reader refuses
/// an entry of the emulator's realm is `cache::tests::entries_are_checked_before_use`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placeholders_stay_in_the_emulators_realm() {
    let store = Store::start(Kind::Folder).await;
    let board = manifest(2, 3, "");
    let a = Project::new(&board);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shotlist"));
    cmd.current_dir(a.dir.path())
        .args(["render", "--local", "--no-sheet", "--cache", &store.url])
        .env("CI", "1");
    store.apply(&mut cmd);
    let out = run(cmd).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(store.entries().await.len(), 2);
    let keys = store.keys().await;
    assert!(keys.iter().all(|k| k.starts_with(REALM)), "{keys:?}");
    let entry: serde_json::Value =
        serde_json::from_slice(&store.get(&store.entries().await[0]).await).unwrap();
    assert_eq!(entry["entry"]["realm"], "emulator");
    assert_eq!(entry["entry"]["endpoint"], "local");

    // A standalone emulator on loopback is of the same realm: it takes them.
    let b = Project::new(&board);
    let emu = emulator(emulator_config()).await;
    let out = render(&b, &emu, &store, &[]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(stats(&emu).jobs_created, 0, "{}", text(&out));
    let keys = store.keys().await;
    assert!(keys.iter().all(|k| k.starts_with(REALM)), "{keys:?}");
    // And they are fresh for it from then on.
    let out = render(&b, &emu, &store, &[]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(stats(&emu).requests_total, 0, "{}", text(&out));
}

/// A cache that does not answer costs a warning, not the run, and its error messages
/// carry no credential.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_cache_is_a_miss_with_a_warning() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let p = Project::new(&manifest(2, 3, ""));
    let emu = emulator(emulator_config()).await;
    let mut cmd = p.command(&emu, &["--cache", "s3://renders/team", "--no-sheet"]);
    cmd.env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{closed}"))
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "AKIDTEST")
        .env("AWS_SECRET_ACCESS_KEY", STORE_SECRET);
    let started = Instant::now();
    let out = run(cmd).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("cache not reachable"), "{}", text(&out));
    assert!(
        text(&out).contains("not published to the cache"),
        "{}",
        text(&out)
    );
    assert_eq!(stats(&emu).jobs_created, 2);
    assert!(started.elapsed() < Duration::from_secs(60));
    // A URL with a credential in it is refused before anything is sent.
    let mut cmd = p.command(
        &emu,
        &[
            "--cache",
            "az://renders/team?sv=2024&sig=SIGSECRET",
            "--force",
        ],
    );
    cmd.env_remove("SHOTLIST_CACHE");
    let out = run(cmd).await;
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(!text(&out).contains("SIGSECRET"), "{}", text(&out));
    assert_eq!(stats(&emu).jobs_created, 2);
}
