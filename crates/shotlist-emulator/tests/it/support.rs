//! Helpers of the emulator tests: start an in-process emulator on `127.0.0.1:0` with a
//! fast clock, a client, and polling until a job finishes.

use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use reqwest::{Client, StatusCode};
use serde_json::Value;
use shotlist_emulator::{Emulator, EmulatorConfig, FaultSpec};

pub const AZ: &str = "/openai/v1/video/generations";
pub const V: &str = "api-version=preview";

/// A fast emulator: 2000× clock (jobs take 30–150 ms), no quota, a high running cap.
pub fn fast() -> EmulatorConfig {
    EmulatorConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        time_scale: 2000.0,
        rpm: 0,
        max_running: 100,
        faults: FaultSpec::none(),
        ..EmulatorConfig::default()
    }
}

pub async fn start(cfg: EmulatorConfig) -> Emulator {
    Emulator::start(cfg).await.expect("the emulator starts")
}

pub fn client() -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("a client")
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    /// A header holding a whole number (`retry-after`, `openai-poll-after-ms`, ...).
    pub fn header_number(&self, name: &str) -> u64 {
        let value = self
            .headers
            .get(name)
            .unwrap_or_else(|| panic!("no `{name}` header"));
        value
            .to_str()
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("`{name}` is not a number: {value:?}"))
    }
}

pub async fn answer(req: reqwest::RequestBuilder) -> Answer {
    let response = req.send().await.expect("a response");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Answer {
        status,
        headers,
        body,
    }
}

pub fn azure_job(prompt: &str, width: u32, height: u32, seconds: u32, variants: u32) -> Value {
    serde_json::json!({
        "prompt": prompt, "width": width, "height": height,
        "n_seconds": seconds, "n_variants": variants, "model": "sora",
    })
}

pub async fn azure_create(client: &Client, base: &str, body: &Value) -> Answer {
    answer(client.post(format!("{base}{AZ}/jobs?{V}")).json(body)).await
}

pub async fn openai_create(client: &Client, base: &str, body: &Value) -> Answer {
    answer(client.post(format!("{base}/v1/videos")).json(body)).await
}

/// Polls until `done(body)`, returning every body seen. Fails after 20 s.
pub async fn poll(client: &Client, url: &str, done: impl Fn(&Value) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    loop {
        let a = answer(client.get(url)).await;
        assert_eq!(a.status, StatusCode::OK, "{url}: {}", a.body);
        let finished = done(&a.body);
        seen.push(a.body);
        if finished {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "{url} did not finish: {:?}",
            seen.last()
        );
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
}

pub fn azure_finished(body: &Value) -> bool {
    matches!(
        body["status"].as_str(),
        Some("succeeded" | "failed" | "cancelled")
    )
}

pub fn openai_finished(body: &Value) -> bool {
    matches!(body["status"].as_str(), Some("completed" | "failed"))
}

/// An MP4 has its `ftyp` box first: bytes 4..8.
pub fn assert_mp4(bytes: &[u8]) {
    assert!(
        bytes.len() > 8 && &bytes[4..8] == b"ftyp",
        "not an MP4: {:?}",
        &bytes[..bytes.len().min(16)]
    );
}

pub fn assert_webp(bytes: &[u8]) {
    assert!(
        bytes.len() > 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP",
        "not a WebP"
    );
}
