//! `shotlist emulator` as a process: the first stdout line, request logs without secrets,
//! a clean exit on Ctrl-C (SIGINT).

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const AZ: &str = "/openai/v1/video/generations";
const V: &str = "api-version=preview";

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("a client")
}

#[tokio::test]
async fn prints_the_address_logs_requests_and_stops_on_ctrl_c() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_shotlist"))
        .args([
            "emulator",
            "--listen",
            "127.0.0.1:0",
            "--time-scale",
            "100",
            "--seed",
            "3",
        ])
        .env("SHOTLIST_EMULATOR_API_KEY", "topsecret-key")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let base = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {first:?}"))
        .to_owned();
    assert!(
        base.starts_with("http://127.0.0.1:") && !base.ends_with(":0"),
        "{base}"
    );

    let c = client();
    let denied = c.get(format!("{base}{AZ}/jobs?{V}")).send().await.unwrap();
    assert_eq!(denied.status(), 401);
    let ok = c
        .get(format!("{base}{AZ}/jobs?{V}&api-key=topsecret-key"))
        .header("api-key", "topsecret-key")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);

    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "no exit after Ctrl-C");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit:?}");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        stderr.contains("GET /openai/v1/video/generations/jobs?api-version=preview 401"),
        "{stderr}"
    );
    assert!(stderr.contains("api-key=REDACTED"), "{stderr}");
    assert!(
        !stderr.contains("topsecret"),
        "the key leaked into the log: {stderr}"
    );
}

#[test]
fn refuses_a_bad_fault_spec_clearly() {
    let out = Command::new(env!("CARGO_BIN_EXE_shotlist"))
        .args(["emulator", "--listen", "127.0.0.1:0", "--faults", "500=2"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid probability `2` for `500`"),
        "{stderr}"
    );
}
