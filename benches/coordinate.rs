//! The cost of `--coordinate`: one request's pacing through Redis (an atomic script on
//! the server) against this process's own pacer alone, on the same machine in the same
//! run. Redis is Debian's `redis-server`, started on a free loopback port.
//!
//! Run: `cargo bench --bench coordinate` (5,000 requests each; `cargo test` runs it with
//! 200, as a check that it works).

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shotlist::coordinate::{Coordinator, Limits};
use shotlist::pacer::Pacer;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n: u32 = if full { 5_000 } else { 200 };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = std::env::var("SHOTLIST_TEST_REDIS").unwrap_or_else(|_| "redis-server".into());
    let mut redis = Command::new(&server)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("`{server}` is needed ({e}): apt-get install redis-server"));
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "redis did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let url = format!("redis://127.0.0.1:{port}/0");
    // A coordinator in use (this server, an epoch long past), so no first-use wait is
    // measured.
    {
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut conn)
            .await
            .unwrap();
        let run_id = info
            .lines()
            .find_map(|l| l.strip_prefix("run_id:"))
            .expect("INFO gives the run id")
            .trim()
            .to_owned();
        let _: () = redis::cmd("MSET")
            .arg("shotlist:1:bench:epoch")
            .arg(1)
            .arg("shotlist:1:bench:server")
            .arg(run_id)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let window = Duration::from_secs(60);
    let limits = Limits {
        jobs: 2,
        requests: n * 4,
        window,
        lease: Duration::from_secs(30),
        poll: Duration::from_millis(5),
    };
    let coordinator = Coordinator::connect(&url, "bench", limits).await.unwrap();

    let time = |pacer: Arc<Pacer>| async move {
        let started = Instant::now();
        for _ in 0..n {
            pacer.acquire().await;
        }
        started.elapsed()
    };
    let local = time(Arc::new(Pacer::new(n * 4, window))).await;
    let shared = {
        let pacer = Arc::new(Pacer::new(n * 4, window));
        pacer.coordinate(Arc::clone(&coordinator));
        time(pacer).await
    };
    let _ = redis.kill();
    let _ = redis.wait();
    assert_eq!(
        coordinator.paced.load(std::sync::atomic::Ordering::Relaxed),
        u64::from(n),
        "every request went through Redis"
    );
    let per = |d: Duration| d.as_secs_f64() * 1e6 / f64::from(n);
    println!(
        "coordination: {n} requests paced; local pacer alone {:.1} µs a request, with Redis {:.1} µs: {:.1} µs of overhead a request ({:.0}x the local pacer), {:.4}% of a second",
        per(local),
        per(shared),
        per(shared) - per(local),
        per(shared) / per(local).max(1e-3),
        (per(shared) - per(local)) / 1e4,
    );
}
