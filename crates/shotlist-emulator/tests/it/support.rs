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

/// The `Authorization` header of each service's scheme.
pub fn fal_key(key: &str) -> (&'static str, String) {
    ("authorization", format!("Key {key}"))
}

/// fal's default-looking text-to-video model and an input of its default size.
pub const FAL_MODEL: &str = "fal-ai/veo3.1";
pub const REPLICATE_MODEL: &str = "bytedance/seedance-2.0";

/// The model's own input asking for `size` and `seconds` (the catalogue's fields).
pub fn model_input(
    api: shotlist_models::limits::Api,
    model: &str,
    prompt: &str,
    size: shotlist_models::limits::Size,
    seconds: u32,
) -> Value {
    let catalogue = shotlist_models::catalogue::Catalogue::builtin();
    let m = catalogue.find(api, model).expect("a catalogue model");
    let mut input = m.wire_fields(size, seconds);
    input.insert("prompt".into(), Value::from(prompt));
    Value::Object(input)
}

/// The smallest size and shortest length of a catalogue model (the quickest to render).
pub fn smallest(
    api: shotlist_models::limits::Api,
    model: &str,
) -> (shotlist_models::limits::Size, u32) {
    let catalogue = shotlist_models::catalogue::Catalogue::builtin();
    let m = catalogue.find(api, model).expect("a catalogue model");
    let size = m
        .sizes
        .iter()
        .map(|e| e.size)
        .min_by_key(|s| s.pixels())
        .unwrap();
    let seconds = match m.seconds.rule().unwrap() {
        shotlist_models::limits::SecondsRule::Range { min, .. } => min,
        shotlist_models::limits::SecondsRule::OneOf(v) => *v.iter().min().unwrap(),
    };
    (size, seconds)
}

pub async fn fal_submit(client: &Client, base: &str, model: &str, input: &Value) -> Answer {
    answer(client.post(format!("{base}/{model}")).json(input)).await
}

pub async fn replicate_create(client: &Client, base: &str, model: &str, input: &Value) -> Answer {
    answer(
        client
            .post(format!("{base}/v1/models/{model}/predictions"))
            .json(&serde_json::json!({ "input": input })),
    )
    .await
}

/// Polls a fal `status_url` until `COMPLETED`, returning (HTTP status, body) of each poll.
pub async fn fal_poll(client: &Client, status_url: &str) -> Vec<(StatusCode, Value)> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    loop {
        let a = answer(client.get(status_url)).await;
        let done = a.body["status"] == "COMPLETED";
        seen.push((a.status, a.body));
        if done {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "{status_url} did not complete: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
}

pub fn replicate_finished(body: &Value) -> bool {
    matches!(
        body["status"].as_str(),
        Some("succeeded" | "failed" | "canceled" | "aborted")
    )
}

/// A self-signed certificate for 127.0.0.1 and 127.0.0.2 (both listeners), written as
/// PEM files in `dir`: `(cert, key)`.
pub fn self_signed(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "127.0.0.2".into()])
        .expect("certificate parameters");
    let key = rcgen::KeyPair::generate().expect("a key pair");
    let cert = params.self_signed(&key).expect("a self-signed certificate");
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (cert_path, key_path)
}

/// A client that trusts the certificate at `cert` only.
pub fn tls_client(cert: &std::path::Path) -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pem = std::fs::read(cert).unwrap();
    Client::builder()
        .timeout(Duration::from_secs(30))
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .build()
        .expect("a client")
}

/// OpenRouter's priced model (its catalogue entry has a price) and one whose price is
/// unknown.
pub const OPENROUTER_MODEL: &str = "kwaivgi/kling-v3.0-pro";
pub const OPENROUTER_UNPRICED_MODEL: &str = "google/veo-3.1-lite";
pub const OR: &str = "/api/v1/videos";

/// A client that sends `Authorization: Bearer KEY` on every request (OpenRouter's).
pub fn bearer_client(key: &str) -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut headers = HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {key}").parse().unwrap(),
    );
    Client::builder()
        .timeout(Duration::from_secs(30))
        .default_headers(headers)
        .build()
        .expect("a client")
}

/// `{model, prompt, resolution, aspect_ratio, duration}` as shotlist sends it.
pub fn openrouter_body(
    model: &str,
    prompt: &str,
    size: shotlist_models::limits::Size,
    seconds: u32,
) -> Value {
    let mut body = model_input(
        shotlist_models::limits::Api::Openrouter,
        model,
        prompt,
        size,
        seconds,
    );
    body["model"] = Value::from(model);
    body
}

pub async fn openrouter_create(client: &Client, base: &str, body: &Value) -> Answer {
    answer(client.post(format!("{base}{OR}")).json(body)).await
}

pub fn openrouter_finished(body: &Value) -> bool {
    matches!(
        body["status"].as_str(),
        Some("completed" | "failed" | "cancelled" | "expired")
    )
}
