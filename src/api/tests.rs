//! Both protocols against a scripted mock server on `127.0.0.1:0`: exact paths, queries,
//! headers and bodies, and exact fault sequences (each request takes the next canned
//! answer). Real time, short delays: a paused tokio clock would also fire reqwest's own
//! timeouts while the runtime waits on sockets.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::limits::Size;

struct Canned {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    delay: Duration,
}

fn reply(status: u16, body: Value) -> Canned {
    Canned {
        status,
        headers: vec![("content-type", "application/json".into())],
        body: body.to_string().into_bytes(),
        delay: Duration::ZERO,
    }
}

fn raw(status: u16, content_type: &str, body: &[u8]) -> Canned {
    Canned {
        status,
        headers: vec![("content-type", content_type.into())],
        body: body.to_vec(),
        delay: Duration::ZERO,
    }
}

impl Canned {
    fn header(mut self, name: &'static str, value: &str) -> Canned {
        self.headers.push((name, value.into()));
        self
    }

    fn after(mut self, delay: Duration) -> Canned {
        self.delay = delay;
        self
    }
}

#[derive(Debug)]
struct Seen {
    method: String,
    path: String,
    query: String,
    headers: HeaderMap,
    body: Vec<u8>,
    at: Instant,
}

impl Seen {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

#[derive(Clone, Default)]
struct Mock {
    script: Arc<Mutex<VecDeque<Canned>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Mock {
    fn seen(&self) -> std::sync::MutexGuard<'_, Vec<Seen>> {
        self.seen.lock().unwrap()
    }
}

async fn handle(State(mock): State<Mock>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap()
        .to_vec();
    mock.seen.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or("").to_owned(),
        headers: parts.headers,
        body,
        at: Instant::now(),
    });
    let next = mock.script.lock().unwrap().pop_front();
    let canned =
        next.unwrap_or_else(|| reply(599, json!({"error": {"message": "script exhausted"}})));
    tokio::time::sleep(canned.delay).await;
    let mut resp = Response::builder().status(canned.status);
    for (k, v) in &canned.headers {
        resp = resp.header(*k, v);
    }
    resp.body(Body::from(canned.body)).unwrap()
}

/// Serves `script` in order; returns the server's origin (`http://127.0.0.1:PORT`).
async fn mock(script: Vec<Canned>) -> (String, Mock) {
    let mock = Mock {
        script: Arc::new(Mutex::new(script.into())),
        ..Mock::default()
    };
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(mock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), mock)
}

/// The first bytes of an MP4 (an `ftyp` box) and of a JPEG: what downloads are checked for.
const MP4_HEAD: &[u8] = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2";
const JPEG: &[u8] = b"\xff\xd8\xff\xe0 a thumbnail";

const AZURE_KEY: &str = "azure-key-0123456789";
const OPENAI_KEY: &str = "sk-openai-0123456789";

fn fast_options() -> ClientOptions {
    ClientOptions {
        retry: RetryPolicy {
            base: Duration::from_millis(10),
            cap: Duration::from_millis(40),
            max_attempts: 4,
            ..RetryPolicy::default()
        },
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(5),
        answer_deadline: Duration::from_secs(5),
    }
}

fn azure_client(origin: &str, options: &ClientOptions) -> Client {
    let auth = Auth::ApiKey {
        key: Secret::new(AZURE_KEY),
        header: KeyHeader::ApiKey,
        source: "AZURE_OPENAI_API_KEY".into(),
    };
    let endpoint = Endpoint::azure(Api::AzureJobs, origin, auth).unwrap();
    connect(
        endpoint,
        Arc::new(Pacer::new(1000, Duration::from_secs(60))),
        options,
    )
    .unwrap()
}

fn openai_client(origin: &str, options: &ClientOptions) -> Client {
    let auth = Auth::ApiKey {
        key: Secret::new(OPENAI_KEY),
        header: KeyHeader::Bearer,
        source: "OPENAI_API_KEY".into(),
    };
    let endpoint = Endpoint::new(Api::OpenaiVideos, &format!("{origin}/v1"), auth).unwrap();
    connect(
        endpoint,
        Arc::new(Pacer::new(1000, Duration::from_secs(60))),
        options,
    )
    .unwrap()
}

fn azure_job(id: &str, status: &str, generations: &[&str]) -> Value {
    json!({
        "object": "video.generation.job", "id": id, "status": status,
        "created_at": 1_750_000_000, "finished_at": null, "expires_at": 1_750_086_400,
        "generations": generations.iter().map(|g| json!({
            "object": "video.generation", "id": g, "job_id": id, "created_at": 1_750_000_100,
            "width": 1280, "height": 720, "n_seconds": 5, "prompt": "a red fox"
        })).collect::<Vec<_>>(),
        "prompt": "a red fox", "model": "sora", "n_variants": 2, "n_seconds": 5,
        "height": 720, "width": 1280, "failure_reason": null
    })
}

fn openai_video(id: &str, status: &str, progress: u8) -> Value {
    json!({
        "id": id, "object": "video", "model": "sora-2", "status": status, "progress": progress,
        "created_at": 1_750_000_000, "completed_at": null, "expires_at": 1_750_086_400,
        "prompt": "a red fox", "size": "1280x720", "seconds": "4",
        "remixed_from_video_id": null, "error": null
    })
}

fn fox(variants: u32, seconds: u32) -> JobRequest {
    JobRequest {
        prompt: "a red fox".into(),
        model: "sora".into(),
        size: Size::new(1280, 720),
        seconds,
        variants,
        params: Default::default(),
        fields: Default::default(),
        images: Vec::new(),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn azure_jobs_protocol_paths_query_headers_and_bodies() {
    let (origin, mock) = mock(vec![
        reply(200, azure_job("task_1", "queued", &[])),
        reply(200, azure_job("task_1", "succeeded", &["gen_a", "gen_b"])).header("retry-after", "3"),
        reply(200, json!({"object": "list", "data": [azure_job("task_2", "running", &[]), azure_job("task_1", "succeeded", &[])], "has_more": false})),
        Canned { status: 204, headers: vec![], body: vec![], delay: Duration::ZERO },
    ])
    .await;
    let client = azure_client(&origin, &fast_options());
    assert!(client.variants_per_job());

    let job = client.create(&fox(2, 5)).await.unwrap();
    assert_eq!(
        (job.id.as_str(), job.status, job.status_raw.as_str()),
        ("task_1", JobStatus::Queued, "queued")
    );
    let expected = json!({"prompt": "a red fox", "width": 1280, "height": 720, "n_seconds": 5, "n_variants": 2, "model": "sora"});
    assert_eq!(job.request.as_ref(), Some(&expected));

    let (job, hint) = client.get("task_1", "sora").await.unwrap();
    assert_eq!(job.status, JobStatus::Succeeded);
    assert_eq!(job.generations, ["gen_a", "gen_b"]);
    assert_eq!(job.expires_at, Some(1_750_086_400));
    assert_eq!(hint.after, Some(Duration::from_secs(3)));
    assert!(job.matches(&fox(2, 5)) && !job.matches(&fox(2, 6)));

    let jobs = client.list_recent(1_749_999_000).await.unwrap();
    assert_eq!(
        jobs.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(),
        ["task_2", "task_1"]
    );
    client.delete("task_1", "sora").await.unwrap();

    let seen = mock.seen();
    let calls: Vec<_> = seen
        .iter()
        .map(|s| (s.method.as_str(), s.path.as_str(), s.query.as_str()))
        .collect();
    assert_eq!(
        calls,
        [
            (
                "POST",
                "/openai/v1/video/generations/jobs",
                "api-version=preview"
            ),
            (
                "GET",
                "/openai/v1/video/generations/jobs/task_1",
                "api-version=preview"
            ),
            (
                "GET",
                "/openai/v1/video/generations/jobs",
                "api-version=preview&limit=50"
            ),
            (
                "DELETE",
                "/openai/v1/video/generations/jobs/task_1",
                "api-version=preview"
            ),
        ]
    );
    assert_eq!(seen[0].json(), expected);
    assert_eq!(seen[0].header("content-type"), Some("application/json"));
    for s in seen.iter() {
        assert_eq!(s.header("api-key"), Some(AZURE_KEY));
        assert_eq!(s.header("authorization"), None);
        assert_eq!(
            s.header("user-agent"),
            Some(concat!("shotlist/", env!("CARGO_PKG_VERSION")))
        );
    }
    assert_eq!(client.requests(), 4);
}

#[tokio::test]
async fn openai_videos_protocol_paths_query_headers_and_bodies() {
    let (origin, mock) = mock(vec![
        reply(200, openai_video("video_1", "queued", 0)),
        reply(200, openai_video("video_1", "in_progress", 42)).header("openai-poll-after-ms", "1500"),
        reply(200, openai_video("video_1", "completed", 100)),
        reply(200, json!({"object": "list", "data": [openai_video("video_1", "completed", 100)], "first_id": "video_1", "last_id": "video_1", "has_more": false})),
        reply(200, json!({"id": "video_1", "object": "video.deleted", "deleted": true})),
    ])
    .await;
    let client = openai_client(&origin, &fast_options());
    assert!(!client.variants_per_job());
    let req = JobRequest {
        model: "sora-2".into(),
        ..fox(1, 4)
    };

    let job = client.create(&req).await.unwrap();
    assert_eq!(job.status, JobStatus::Queued);
    assert!(job.generations.is_empty());
    let (job, hint) = client.get("video_1", "sora").await.unwrap();
    assert_eq!(
        (job.status, job.progress, hint.after),
        (
            JobStatus::Running,
            Some(42),
            Some(Duration::from_millis(1500))
        )
    );
    let (job, hint) = client.get("video_1", "sora").await.unwrap();
    assert_eq!(
        (job.status, job.status_raw.as_str(), hint.after),
        (JobStatus::Succeeded, "completed", None)
    );
    assert_eq!(job.generations, ["video_1"]);
    assert!(job.matches(&req));
    assert_eq!(client.list_recent(1_749_999_000).await.unwrap().len(), 1);
    client.delete("video_1", "sora").await.unwrap();

    let seen = mock.seen();
    let calls: Vec<_> = seen
        .iter()
        .map(|s| (s.method.as_str(), s.path.as_str(), s.query.as_str()))
        .collect();
    assert_eq!(
        calls,
        [
            ("POST", "/v1/videos", ""),
            ("GET", "/v1/videos/video_1", ""),
            ("GET", "/v1/videos/video_1", ""),
            ("GET", "/v1/videos", "limit=100&order=desc"),
            ("DELETE", "/v1/videos/video_1", ""),
        ]
    );
    assert_eq!(
        seen[0].json(),
        json!({"prompt": "a red fox", "model": "sora-2", "size": "1280x720", "seconds": "4"})
    );
    for s in seen.iter() {
        assert_eq!(
            s.header("authorization"),
            Some(format!("Bearer {OPENAI_KEY}").as_str())
        );
        assert_eq!(s.header("api-key"), None);
    }
}

#[tokio::test]
async fn openai_refuses_several_variants_in_one_job() {
    let (origin, mock) = mock(vec![]).await;
    let err = openai_client(&origin, &fast_options())
        .create(&fox(2, 4))
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::Config { .. }), "{err:?}");
    assert!(mock.seen().is_empty());
}

#[tokio::test]
async fn downloads_use_the_content_paths_and_hash_what_was_written() {
    let video = [
        MP4_HEAD.to_vec(),
        (0..200_000u32).map(|i| (i % 251) as u8).collect(),
    ]
    .concat();
    let (origin, mock) = mock(vec![
        raw(200, "video/mp4", &video),
        raw(200, "image/jpeg", JPEG),
        raw(200, "video/mp4", &video),
        raw(200, "image/webp", b"RIFF\x10\x00\x00\x00WEBPVP8 "),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let azure = azure_client(&origin, &fast_options());
    let openai = openai_client(&origin, &fast_options());
    let azure_job = Job {
        id: "task_1".into(),
        generations: vec!["gen_a".into(), "gen_b".into()],
        ..blank_job()
    };

    let out = dir.path().join("shots/fox.mp4");
    let d = azure.download_video(&azure_job, 1, &out).await.unwrap();
    assert_eq!(
        (d.bytes, d.sha256.as_str()),
        (video.len() as u64, sha256_hex(&video).as_str())
    );
    assert_eq!(d.content_type.as_deref(), Some("video/mp4"));
    assert_eq!(std::fs::read(&out).unwrap(), video);
    let d = azure
        .download_thumbnail(&azure_job, 0, &dir.path().join("fox.jpg"))
        .await
        .unwrap();
    assert_eq!(d.sha256, sha256_hex(JPEG));

    let openai_job = Job {
        id: "video_1".into(),
        generations: vec!["video_1".into()],
        ..blank_job()
    };
    openai.download_video(&openai_job, 0, &out).await.unwrap();
    openai
        .download_thumbnail(&openai_job, 0, &dir.path().join("fox.webp"))
        .await
        .unwrap();
    assert!(matches!(
        openai.download_video(&openai_job, 1, &out).await,
        Err(ApiError::Config { .. })
    ));

    let seen = mock.seen();
    let calls: Vec<_> = seen
        .iter()
        .map(|s| (s.path.as_str(), s.query.as_str()))
        .collect();
    assert_eq!(
        calls,
        [
            (
                "/openai/v1/video/generations/gen_b/content/video",
                "api-version=preview"
            ),
            (
                "/openai/v1/video/generations/gen_a/content/thumbnail",
                "api-version=preview"
            ),
            ("/v1/videos/video_1/content", "variant=video"),
            ("/v1/videos/video_1/content", "variant=thumbnail"),
        ]
    );
    let leftovers: Vec<_> = walk(dir.path())
        .into_iter()
        .filter(|p| p.ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn blank_job() -> Job {
    Job {
        queue_position: None,
        id: String::new(),
        status: JobStatus::Succeeded,
        status_raw: "succeeded".into(),
        progress: None,
        created_at: 0,
        finished_at: None,
        expires_at: None,
        generations: Vec::new(),
        failure: None,
        prompt: None,
        model: None,
        size: None,
        seconds: None,
        request: None,
    }
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path.display().to_string());
        }
    }
    out
}

#[tokio::test]
async fn a_429_waits_for_retry_after_ms_then_succeeds() {
    let (origin, mock) = mock(vec![
        reply(
            429,
            json!({"error": {"code": "429", "message": "Rate limit is exceeded."}}),
        )
        .header("retry-after-ms", "300")
        .header("retry-after", "30"),
        reply(200, azure_job("task_1", "queued", &[])),
    ])
    .await;
    let client = azure_client(&origin, &fast_options());
    // A 429 answer means no job was made: a create is retried like anything else.
    let job = client.create(&fox(1, 5)).await.unwrap();
    assert_eq!(job.id, "task_1");
    let seen = mock.seen();
    assert_eq!(seen.len(), 2);
    let waited = seen[1].at - seen[0].at;
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert_eq!(seen[0].body, seen[1].body);
    assert_eq!(client.requests(), 2);
}

#[tokio::test]
async fn a_500_then_200_is_retried() {
    let (origin, mock) = mock(vec![
        reply(
            500,
            json!({"error": {"code": "InternalServerError", "message": "boom"}}),
        ),
        reply(
            503,
            json!({"code": "ServiceUnavailable", "message": "busy"}),
        ),
        reply(200, openai_video("video_1", "in_progress", 10)),
    ])
    .await;
    let (job, _) = openai_client(&origin, &fast_options())
        .get("video_1", "sora")
        .await
        .unwrap();
    assert_eq!(job.progress, Some(10));
    assert_eq!(mock.seen().len(), 3);
}

#[tokio::test]
async fn transient_failures_give_up_after_max_attempts() {
    let (origin, mock) = mock(
        (0..10)
            .map(|_| reply(502, json!({"error": {"message": "bad gateway"}})))
            .collect(),
    )
    .await;
    let err = azure_client(&origin, &fast_options())
        .get("task_1", "sora")
        .await
        .unwrap_err();
    match &err {
        ApiError::Transient {
            status: Some(502),
            attempts: 4,
            message,
            ..
        } => assert_eq!(message, "bad gateway"),
        other => panic!("{other:?}"),
    }
    assert_eq!(mock.seen().len(), 4);
}

#[tokio::test]
async fn a_400_surfaces_the_service_message_and_revised_prompt() {
    let body = json!({
        "code": "contentFilter", "message": "Your prompt was blocked by the content filter.", "param": "prompt", "type": null,
        "inner_error": {"code": "ResponsibleAIPolicyViolation", "revised_prompt": "a calm red fox", "error_details": {}}
    });
    let (origin, mock) = mock(vec![reply(400, body)]).await;
    let err = azure_client(&origin, &fast_options())
        .create(&fox(1, 5))
        .await
        .unwrap_err();
    match &err {
        ApiError::Permanent {
            status: 400,
            code,
            message,
            param,
            revised_prompt,
            ..
        } => {
            assert_eq!(code.as_deref(), Some("contentFilter"));
            assert_eq!(message, "Your prompt was blocked by the content filter.");
            assert_eq!(param.as_deref(), Some("prompt"));
            assert_eq!(revised_prompt.as_deref(), Some("a calm red fox"));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string().contains("blocked by the content filter"),
        "{err}"
    );
    assert_eq!(mock.seen().len(), 1, "a 400 is not retried");
}

#[tokio::test]
async fn a_401_names_the_credential_but_never_its_value() {
    // A proxy echoing the key back must not get it into our error either.
    let body = json!({"error": {"code": "401", "message": format!("Access denied: invalid key {AZURE_KEY}")}});
    let (origin, mock) = mock(vec![reply(401, body)]).await;
    let err = azure_client(&origin, &fast_options())
        .get("task_1", "sora")
        .await
        .unwrap_err();
    assert!(err.is_fatal());
    let display = err.to_string();
    let debug = format!("{err:?}");
    let report = format!("{:?}", miette::Report::new(err));
    assert!(
        display.contains("API key from AZURE_OPENAI_API_KEY"),
        "{display}"
    );
    for text in [&display, &debug, &report] {
        assert!(!text.contains(AZURE_KEY), "{text}");
        assert!(!text.contains("127.0.0.1"), "{text}");
    }
    assert_eq!(mock.seen().len(), 1);

    let client = azure_client(&origin, &fast_options());
    let debug = format!("{client:?}");
    assert!(!debug.contains(AZURE_KEY), "{debug}");
}

#[tokio::test]
async fn a_create_that_times_out_is_reported_not_retried() {
    let (origin, mock) = mock(vec![
        reply(200, azure_job("task_1", "queued", &[])).after(Duration::from_millis(1500)),
        reply(200, azure_job("task_1", "queued", &[])).after(Duration::from_millis(1500)),
        reply(200, azure_job("task_1", "queued", &[])),
    ])
    .await;
    let options = ClientOptions {
        read_timeout: Duration::from_millis(300),
        ..fast_options()
    };
    let client = azure_client(&origin, &options);
    let err = client.create(&fox(1, 5)).await.unwrap_err();
    match &err {
        ApiError::CreateOutcomeUnknown {
            request,
            since_unix,
            ..
        } => {
            assert_eq!(request, &client.request_body(&fox(1, 5)));
            assert!(*since_unix > 1_700_000_000);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(mock.seen().len(), 1);
    // A read, on the other hand, is retried after a timeout.
    let (job, _) = client.get("task_1", "sora").await.unwrap();
    assert_eq!(job.id, "task_1");
    assert_eq!(mock.seen().len(), 3);
}

#[tokio::test]
async fn a_404_is_not_found_and_expired_content_says_so() {
    let (origin, _mock) = mock(vec![
        reply(
            404,
            json!({"error": {"code": "NotFound", "message": "no such job"}}),
        ),
        reply(
            404,
            json!({"error": {"code": "NotFound", "message": "gone"}}),
        ),
        Canned {
            status: 404,
            headers: vec![],
            body: vec![],
            delay: Duration::ZERO,
        },
    ])
    .await;
    let client = azure_client(&origin, &fast_options());
    let err = client.get("task_9", "sora").await.unwrap_err();
    assert!(
        matches!(&err, ApiError::NotFound { what, .. } if what == "job `task_9`"),
        "{err:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let job = Job {
        id: "task_1".into(),
        generations: vec!["gen_a".into()],
        expires_at: Some(1_000),
        ..blank_job()
    };
    let err = client
        .download_video(&job, 0, &dir.path().join("a.mp4"))
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::Expired { .. }), "{err:?}");
    // Deleting what is already gone reached the goal.
    client.delete("task_1", "sora").await.unwrap();
}

/// A server that promises `content-length: 1000` and closes after 10 bytes: what a
/// dropped connection looks like. Returns its origin and a count of connections.
async fn truncating_server() -> (String, Arc<Mutex<u32>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(Mutex::new(0));
    let counter = Arc::clone(&count);
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            *counter.lock().unwrap() += 1;
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head =
                    "HTTP/1.1 200 OK\r\ncontent-type: video/mp4\r\ncontent-length: 1000\r\n\r\n";
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(b"0123456789").await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (format!("http://{addr}"), count)
}

#[tokio::test]
async fn a_truncated_download_fails_cleanly_and_keeps_the_old_file() {
    let (origin, connections) = truncating_server().await;
    let options = ClientOptions {
        retry: RetryPolicy {
            max_attempts: 2,
            ..fast_options().retry
        },
        ..fast_options()
    };
    let client = openai_client(&origin, &options);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("fox.mp4");
    std::fs::write(&out, b"previous good render").unwrap();

    let job = Job {
        id: "video_1".into(),
        generations: vec!["video_1".into()],
        ..blank_job()
    };
    let err = client.download_video(&job, 0, &out).await.unwrap_err();
    match &err {
        ApiError::Transient {
            attempts: 1,
            message,
            ..
        } => assert!(message.contains("after 10 of 1000 bytes"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read(&out).unwrap(), b"previous good render");
    assert_eq!(
        walk(dir.path()),
        [out.display().to_string()],
        "no temporary file left behind"
    );
    assert_eq!(
        *connections.lock().unwrap(),
        1,
        "one attempt: the engine is the one layer that retries a download"
    );
}

#[tokio::test]
async fn endpoints_are_checked_and_built() {
    let auth = || Auth::ApiKey {
        key: Secret::new("k"),
        header: KeyHeader::ApiKey,
        source: "X".into(),
    };
    let e = Endpoint::azure(Api::OpenaiVideos, "https://res.openai.azure.com/", auth()).unwrap();
    assert_eq!(
        e.base_url.as_str(),
        "https://res.openai.azure.com/openai/v1"
    );
    let e = Endpoint::azure(
        Api::AzureJobs,
        "https://res.openai.azure.com/openai/v1",
        auth(),
    )
    .unwrap();
    assert_eq!(
        e.base_url.as_str(),
        "https://res.openai.azure.com/openai/v1"
    );
    assert!(Endpoint::new(Api::OpenaiVideos, "ftp://x", auth()).is_err());
    assert!(Endpoint::new(Api::OpenaiVideos, "not a url", auth()).is_err());
    let url = endpoint_url(&e.base_url, &["videos", "a/b c"], &[("variant", "video")]);
    assert_eq!(
        url.as_str(),
        "https://res.openai.azure.com/openai/v1/videos/a%2Fb%20c?variant=video"
    );
}

/// A redirect that sends the client to `target` (absolute or relative).
fn redirect(status: u16, target: &str) -> Canned {
    raw(status, "text/plain", b"moved").header("location", target)
}

#[tokio::test]
async fn no_credential_follows_a_redirect_to_another_origin() {
    let (other, elsewhere) = mock(vec![
        reply(200, azure_job("task_1", "succeeded", &["gen_a"])),
        raw(200, "video/mp4", MP4_HEAD),
        reply(200, openai_video("video_1", "completed", 100)),
    ])
    .await;
    let (origin, api) = mock(vec![
        redirect(302, &format!("{other}/jobs/task_1")),
        redirect(307, &format!("{other}/cdn/gen_a.mp4")),
        redirect(301, &format!("{other}/v1/videos/video_1")),
    ])
    .await;
    let azure = azure_client(&origin, &fast_options());
    let (job, _) = azure.get("task_1", "sora").await.unwrap();
    assert_eq!(job.generations, ["gen_a"]);
    let dir = tempfile::tempdir().unwrap();
    azure
        .download_video(&job, 0, &dir.path().join("a.mp4"))
        .await
        .unwrap();
    let openai = openai_client(&origin, &fast_options());
    openai.get("video_1", "sora").await.unwrap();

    let seen = elsewhere.seen();
    assert_eq!(seen.len(), 3, "every redirect was followed");
    for s in seen.iter() {
        assert_eq!(s.header("api-key"), None, "{} {}", s.method, s.path);
        assert_eq!(s.header("authorization"), None, "{} {}", s.method, s.path);
    }
    for s in api.seen().iter() {
        assert!(s.header("api-key").is_some() || s.header("authorization").is_some());
    }
    // Only the API's own requests count against its quota.
    assert_eq!(azure.requests(), 2);
}

#[tokio::test]
async fn a_same_origin_redirect_keeps_the_credential() {
    let (origin, api) = mock(vec![
        redirect(
            302,
            "/openai/v1/video/generations/jobs/task_2?api-version=preview",
        ),
        reply(200, azure_job("task_2", "running", &[])),
    ])
    .await;
    let azure = azure_client(&origin, &fast_options());
    let (job, _) = azure.get("task_1", "sora").await.unwrap();
    assert_eq!(job.id, "task_2");
    let seen = api.seen();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|s| s.header("api-key") == Some(AZURE_KEY)));
}

#[tokio::test]
async fn a_create_is_never_re_sent_to_another_origin() {
    let (other, elsewhere) = mock(vec![reply(200, azure_job("task_1", "queued", &[]))]).await;
    for status in [307, 308, 302, 303] {
        let (origin, _api) = mock(vec![redirect(status, &format!("{other}/jobs"))]).await;
        let azure = azure_client(&origin, &fast_options());
        let err = azure.create(&fox(1, 5)).await.unwrap_err();
        assert!(
            matches!(err, ApiError::Protocol { .. }),
            "{status}: {err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("redirect") && !text.contains(AZURE_KEY),
            "{text}"
        );
    }
    assert!(
        elsewhere.seen().is_empty(),
        "nothing reached the other host"
    );
}

#[tokio::test]
async fn a_download_that_is_not_a_video_or_over_its_cap_replaces_nothing() {
    let (origin, _mock) = mock(vec![
        raw(200, "video/mp4", b"<html>Service Unavailable</html>"),
        raw(200, "image/jpeg", MP4_HEAD),
    ])
    .await;
    let client = azure_client(&origin, &fast_options());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a.mp4");
    std::fs::write(&out, b"previous good render").unwrap();
    let job = Job {
        id: "task_1".into(),
        generations: vec!["gen_a".into()],
        ..blank_job()
    };
    let err = client.download_video(&job, 0, &out).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("not a video") && text.contains("<html>"),
        "{text}"
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"previous good render");
    let thumb = dir.path().join("a.jpg");
    let err = client
        .download_thumbnail(&job, 0, &thumb)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not an image"), "{err}");
    assert!(!thumb.exists());
    assert_eq!(walk(dir.path()).len(), 1, "no temporary file left behind");
}

/// A server that answers 200 with a JSON body trickled one byte every 200 ms: each byte
/// resets a read timeout, so only a deadline on the whole answer ends it.
async fn trickling_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let body = br#"{"id":"task_1","status":"running","created_at":1750000000}"#;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                for b in body.iter() {
                    if sock.write_all(&[*b]).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_trickled_answer_ends_at_its_deadline_and_a_huge_one_is_not_read() {
    let origin = trickling_server().await;
    let options = ClientOptions {
        retry: RetryPolicy {
            max_attempts: 1,
            ..fast_options().retry
        },
        answer_deadline: Duration::from_secs(1),
        ..fast_options()
    };
    let client = azure_client(&origin, &options);
    let started = Instant::now();
    let err = client.get("task_1", "sora").await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(err, ApiError::Transient { .. }), "{err:?}");

    let huge = vec![b' '; crate::api::transport::MAX_ANSWER_BYTES + 10];
    let (origin, _mock) = mock(vec![raw(200, "application/json", &huge)]).await;
    let client = azure_client(&origin, &fast_options());
    let err = client.get("task_1", "sora").await.unwrap_err();
    assert!(err.to_string().contains("larger than"), "{err}");
}

#[tokio::test]
async fn a_server_that_echoes_the_key_never_gets_it_into_a_code_a_reason_or_a_cut() {
    let mut failed = azure_job("task_1", "failed", &[]);
    failed["failure_reason"] = json!(format!("input_moderation for {AZURE_KEY}"));
    let page = format!("<html>{}{AZURE_KEY} trailing text</html>", "x".repeat(190));
    let (origin, _mock) = mock(vec![
        reply(400, json!({"error": {"code": AZURE_KEY, "message": format!("bad key {AZURE_KEY}"), "param": AZURE_KEY}})),
        reply(200, failed),
        raw(500, "text/html", page.as_bytes()),
    ])
    .await;
    let options = ClientOptions {
        retry: RetryPolicy {
            max_attempts: 1,
            ..fast_options().retry
        },
        ..fast_options()
    };
    let client = azure_client(&origin, &options);
    let prefix = &AZURE_KEY[..6];
    let err = client.create(&fox(1, 5)).await.unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(prefix), "{shown}");
    let (job, _) = client.get("task_1", "sora").await.unwrap();
    let shown = format!("{:?}", job.failure);
    assert!(!shown.contains(prefix) && shown.contains("***"), "{shown}");
    let err = client.get("task_1", "sora").await.unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains(prefix),
        "the cut kept part of the key: {shown}"
    );
}

// fal and Replicate: the model's own fields on the wire, media on another host.

const FAL_KEY: &str = "fal-id:fal-secret-0123456789";
const REPLICATE_TOKEN: &str = "r8_replicate_0123456789";

fn marketplace_client(api: Api, base: &str) -> Client {
    let (key, source) = match api {
        Api::Fal => (FAL_KEY, "FAL_KEY"),
        _ => (REPLICATE_TOKEN, "REPLICATE_API_TOKEN"),
    };
    let auth = Auth::ApiKey {
        key: Secret::new(key),
        header: KeyHeader::of(api),
        source: source.into(),
    };
    let endpoint = Endpoint::new(api, base, auth).unwrap();
    connect(
        endpoint,
        Arc::new(Pacer::new(1000, Duration::from_secs(60))),
        &fast_options(),
    )
    .unwrap()
}

/// A shot of `model` (catalogue id) on `api`, as the engine asks for it.
fn marketplace_request(api: Api, model: &str) -> JobRequest {
    let entry = crate::catalogue::Catalogue::builtin()
        .find(api, model)
        .unwrap();
    let mut params = crate::shot::Params::new();
    params.insert("seed".into(), json!(7));
    crate::render_inputs::RenderInputs {
        api,
        model: model.into(),
        prompt: "a red fox".into(),
        size: Size::new(1280, 720),
        seconds: 8,
        takes: 1,
        params,
        images: Vec::new(),
    }
    .job_request(false, Some(entry))
}

fn mp4_body() -> Vec<u8> {
    let mut body = MP4_HEAD.to_vec();
    body.extend(std::iter::repeat_n(0u8, 1000));
    body
}

#[tokio::test]
async fn fal_submits_the_models_fields_follows_the_queue_and_fetches_the_cdn_without_the_key() {
    let video = mp4_body();
    let (media, media_mock) = mock(vec![raw(200, "video/mp4", &video)]).await;
    let (origin, api) = mock(vec![
        reply(
            200,
            json!({"request_id": "req-1", "status": "IN_QUEUE", "queue_position": 2,
            "status_url": "x", "response_url": "y", "cancel_url": "z"}),
        ),
        reply(202, json!({"status": "IN_QUEUE", "queue_position": 1})),
        reply(202, json!({"status": "IN_PROGRESS"})),
        reply(
            200,
            json!({"status": "COMPLETED", "metrics": {"inference_time": 3.2}}),
        ),
        reply(
            200,
            json!({"video": {"url": format!("{media}/files/v.mp4"), "content_type": "video/mp4",
            "file_name": "../../etc/passwd", "file_size": video.len()}}),
        ),
    ])
    .await;
    let client = marketplace_client(Api::Fal, &origin);
    assert!(!client.can_list() && client.thumbnail_extension().is_none());
    let req = marketplace_request(Api::Fal, "veo-3.1");
    let job = client.create(&req).await.unwrap();
    assert_eq!((job.id.as_str(), job.queue_position), ("req-1", Some(2)));
    let (queued, _) = client.get("req-1", &req.model).await.unwrap();
    assert_eq!(
        (queued.status, queued.queue_position),
        (JobStatus::Queued, Some(1))
    );
    let (running, _) = client.get("req-1", &req.model).await.unwrap();
    assert_eq!(running.status, JobStatus::Running);
    let (done, _) = client.get("req-1", &req.model).await.unwrap();
    assert_eq!(
        (done.status, done.generations.clone()),
        (JobStatus::Succeeded, vec!["req-1".to_string()])
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("fox.mp4");
    let d = client.download_video(&done, 0, &out).await.unwrap();
    assert_eq!(d.sha256, sha256_hex(&video));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no file named by the server"
    );

    let seen = api.seen();
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("POST", "/fal-ai/veo3.1")
    );
    assert_eq!(
        seen[0].json(),
        json!({"prompt": "a red fox", "resolution": "720p", "aspect_ratio": "16:9", "duration": "8s", "seed": 7})
    );
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Key {FAL_KEY}").as_str())
    );
    assert_eq!(seen[1].path, "/fal-ai/veo3.1/requests/req-1/status");
    assert_eq!(seen[4].path, "/fal-ai/veo3.1/requests/req-1");
    let media_seen = media_mock.seen();
    assert_eq!(media_seen.len(), 1);
    assert!(
        media_seen[0].headers.get("authorization").is_none(),
        "the key went to the CDN"
    );
}

#[tokio::test]
async fn fal_failures_carry_the_services_words_and_cancel_of_a_finished_request_is_fine() {
    let (origin, api) = mock(vec![
        reply(200, json!({"status": "COMPLETED", "error": "Runner ran out of memory", "error_type": "runner_server_error"})),
        reply(200, json!({"status": "COMPLETED"})),
        reply(422, json!({"detail": [{"loc": ["body", "prompt"], "msg": "flagged by the content checker", "type": "content_policy_violation"}]})),
        reply(400, json!({"status": "ALREADY_COMPLETED"})),
    ])
    .await;
    let client = marketplace_client(Api::Fal, &origin);
    let model = "fal-ai/wan/v2.7/text-to-video";
    let (a, _) = client.get("req-a", model).await.unwrap();
    assert_eq!(a.status, JobStatus::Failed);
    let f = a.failure.unwrap();
    assert_eq!(
        (f.code.as_deref(), f.message.as_deref()),
        (
            Some("runner_server_error"),
            Some("Runner ran out of memory")
        )
    );
    let (b, _) = client.get("req-b", model).await.unwrap();
    assert_eq!(b.status, JobStatus::Failed);
    let f = b.failure.unwrap();
    assert_eq!(f.code.as_deref(), Some("content_policy_violation"));
    assert_eq!(
        f.message.as_deref(),
        Some("prompt: flagged by the content checker")
    );
    client.delete("req-b", model).await.unwrap();
    assert_eq!(api.seen()[3].method, "PUT");
    assert_eq!(api.seen()[3].path, "/fal-ai/wan/requests/req-b/cancel");
}

#[tokio::test]
async fn media_urls_must_be_https_off_loopback_and_within_their_declared_size() {
    let (origin, _api) = mock(vec![
        reply(200, json!({"status": "COMPLETED"})),
        reply(
            200,
            json!({"video": {"url": "http://cdn.example.com/v.mp4"}}),
        ),
        reply(200, json!({"status": "COMPLETED"})),
        reply(
            200,
            json!({"video": {"url": "https://cdn.example.com/v.mp4", "file_size": 1u64 << 40}}),
        ),
    ])
    .await;
    let client = marketplace_client(Api::Fal, &origin);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a.mp4");
    std::fs::write(&out, b"the good one").unwrap();
    for (id, expected) in [
        ("plain", "only https"),
        ("huge", "declares 1099511627776 bytes"),
    ] {
        let (job, _) = client.get(id, "fal-ai/veo3.1").await.unwrap();
        let err = client.download_video(&job, 0, &out).await.unwrap_err();
        assert!(err.to_string().contains(expected), "{err}");
    }
    assert_eq!(std::fs::read(&out).unwrap(), b"the good one");
}

fn prediction(id: &str, status: &str, output: Value, created: &str) -> Value {
    json!({
        "id": id, "model": "google/veo-3.1", "version": "ed5b1767", "input": {"prompt": "a red fox"},
        "output": output, "data_removed": false, "error": null, "status": status,
        "created_at": created, "completed_at": if status == "succeeded" { json!("2026-12-02T05:00:30Z") } else { Value::Null },
        "urls": {"get": "", "cancel": "", "stream": "", "web": ""}
    })
}

#[tokio::test]
async fn replicate_creates_on_the_models_path_and_downloads_the_output_without_the_token() {
    let video = mp4_body();
    let (media, media_mock) = mock(vec![raw(200, "video/mp4", &video)]).await;
    let (origin, api) = mock(vec![
        reply(
            201,
            prediction("p1", "starting", Value::Null, "2026-12-02T05:00:00Z"),
        ),
        reply(
            200,
            prediction("p1", "processing", Value::Null, "2026-12-02T05:00:00Z"),
        ),
        reply(
            200,
            prediction(
                "p1",
                "succeeded",
                json!(format!("{media}/x/output.mp4")),
                "2026-12-02T05:00:00Z",
            ),
        ),
    ])
    .await;
    let client = marketplace_client(Api::Replicate, &format!("{origin}/v1"));
    let req = marketplace_request(Api::Replicate, "veo-3.1");
    let job = client.create(&req).await.unwrap();
    assert_eq!(
        (job.status, job.created_at),
        (JobStatus::Queued, 1_796_187_600)
    );
    assert!(job.matches(&req));
    let (running, _) = client.get("p1", &req.model).await.unwrap();
    assert_eq!(running.status, JobStatus::Running);
    let (done, _) = client.get("p1", &req.model).await.unwrap();
    assert_eq!(
        done.expires_at,
        Some(1_796_187_630 + 3600),
        "an hour after it ends"
    );
    let dir = tempfile::tempdir().unwrap();
    let d = client
        .download_video(&done, 0, &dir.path().join("a.mp4"))
        .await
        .unwrap();
    assert_eq!(d.sha256, sha256_hex(&video));
    let seen = api.seen();
    assert_eq!(seen[0].path, "/v1/models/google/veo-3.1/predictions");
    assert_eq!(
        seen[0].json(),
        json!({"input": {"prompt": "a red fox", "resolution": "720p", "aspect_ratio": "16:9", "duration": 8, "seed": 7}})
    );
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Bearer {REPLICATE_TOKEN}").as_str())
    );
    assert_eq!(seen[1].path, "/v1/predictions/p1");
    assert!(media_mock.seen()[0].headers.get("authorization").is_none());
}

#[tokio::test]
async fn replicate_lists_through_cursor_pages_and_an_output_removed_is_expired() {
    let (origin, api) = mock(Vec::new()).await;
    let page2 = format!("{origin}/v1/predictions?cursor=abc");
    api.script.lock().unwrap().extend([
        reply(200, json!({"next": page2, "previous": null, "results": [
            prediction("p3", "processing", Value::Null, "2026-12-02T05:02:00Z"),
            prediction("p2", "succeeded", json!("https://cdn.example.com/2.mp4"), "2026-12-02T05:01:00Z"),
        ]})),
        reply(200, json!({"next": "https://elsewhere.example/v1/predictions?cursor=x", "previous": null, "results": [
            prediction("p1", "starting", Value::Null, "2026-12-02T04:40:00Z"),
        ]})),
        reply(200, json!({
            "id": "p2", "model": "google/veo-3.1", "version": "v", "input": {}, "output": null,
            "data_removed": true, "error": null, "status": "succeeded", "created_at": "2026-12-02T05:01:00Z",
            "completed_at": "2026-12-02T05:01:30Z", "urls": {}
        })),
    ]);
    let client = marketplace_client(Api::Replicate, &format!("{origin}/v1"));
    let since = "2026-12-02T04:30:00Z"
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_second();
    let err = client.list_recent(since).await.unwrap_err();
    assert!(
        err.to_string().contains("elsewhere.example"),
        "a list cut short is an error: {err}"
    );
    {
        let seen = api.seen();
        assert_eq!(seen.len(), 2, "the page on another origin is not read");
        assert!(
            seen[0]
                .query
                .starts_with("created_after=2026-12-02T04%3A30%3A00Z"),
            "{}",
            seen[0].query
        );
        assert_eq!(seen[1].query, "cursor=abc");
    }
    // Asked afresh (a later run), the prediction's output is gone.
    let client = marketplace_client(Api::Replicate, &format!("{origin}/v1"));
    let job = Job {
        id: "p2".into(),
        generations: vec!["p2".into()],
        model: Some("google/veo-3.1".into()),
        ..blank_job()
    };
    let dir = tempfile::tempdir().unwrap();
    let err = client
        .download_video(&job, 0, &dir.path().join("a.mp4"))
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::Expired { .. }), "{err}");
}

// OpenRouter: one key, many models; unsigned URLs without the key, the content endpoint
// with it; 402 stops the run.

const OPENROUTER_KEY: &str = "sk-or-v1-0123456789abcdef";

fn openrouter_client(base: &str) -> Client {
    let auth = Auth::ApiKey {
        key: Secret::new(OPENROUTER_KEY),
        header: KeyHeader::of(Api::Openrouter),
        source: "OPENROUTER_API_KEY".into(),
    };
    connect(
        Endpoint::new(Api::Openrouter, base, auth).unwrap(),
        Arc::new(Pacer::new(1000, Duration::from_secs(60))),
        &fast_options(),
    )
    .unwrap()
}

#[tokio::test]
async fn openrouter_submits_the_models_fields_and_downloads_unsigned_urls_without_the_key() {
    let video = mp4_body();
    let (media, media_mock) = mock(vec![raw(200, "video/mp4", &video)]).await;
    let (origin, api) = mock(vec![
        reply(202, json!({"id": "job-1", "polling_url": "/api/v1/videos/job-1", "status": "pending"})),
        reply(200, json!({"id": "job-1", "polling_url": "/api/v1/videos/job-1", "status": "in_progress"})),
        reply(200, json!({"id": "job-1", "polling_url": "/api/v1/videos/job-1", "status": "completed",
            "unsigned_urls": [format!("{media}/store/job-1.mp4")], "usage": {"cost": 0.56, "is_byok": false}})),
        reply(200, json!({"id": "job-2", "polling_url": "/api/v1/videos/job-2", "status": "completed"})),
        raw(200, "video/mp4", &video),
        reply(200, json!({"id": "job-3", "polling_url": "/api/v1/videos/job-3", "status": "expired"})),
    ])
    .await;
    let client = openrouter_client(&format!("{origin}/api/v1"));
    assert!(!client.can_list() && !client.can_cancel());
    let entry = crate::catalogue::Catalogue::builtin()
        .find(Api::Openrouter, "kwaivgi/kling-v3.0-pro")
        .unwrap();
    let req = crate::render_inputs::RenderInputs {
        api: Api::Openrouter,
        model: entry.id.clone(),
        prompt: "a red fox".into(),
        size: Size::new(720, 1280),
        seconds: 5,
        takes: 1,
        params: Default::default(),
        images: Vec::new(),
    }
    .job_request(false, Some(entry));
    let job = client.create(&req).await.unwrap();
    assert_eq!((job.id.as_str(), job.status), ("job-1", JobStatus::Queued));
    let (running, _) = client.get("job-1", &req.model).await.unwrap();
    assert_eq!(running.status, JobStatus::Running);
    let (done, _) = client.get("job-1", &req.model).await.unwrap();
    assert_eq!(done.status, JobStatus::Succeeded);
    let dir = tempfile::tempdir().unwrap();
    let d = client
        .download_video(&done, 0, &dir.path().join("a.mp4"))
        .await
        .unwrap();
    assert_eq!(d.sha256, sha256_hex(&video));
    assert!(media_mock.seen()[0].headers.get("authorization").is_none());
    // No unsigned URL: the content endpoint, on the API, with the key.
    let (two, _) = client.get("job-2", &req.model).await.unwrap();
    client
        .download_video(&two, 0, &dir.path().join("b.mp4"))
        .await
        .unwrap();
    let (three, _) = client.get("job-3", &req.model).await.unwrap();
    assert_eq!(three.status, JobStatus::Failed);
    assert!(
        three
            .failure
            .unwrap()
            .message
            .unwrap()
            .contains("time to live")
    );
    let seen = api.seen();
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("POST", "/api/v1/videos")
    );
    assert_eq!(
        seen[0].json(),
        json!({"model": "kwaivgi/kling-v3.0-pro", "prompt": "a red fox", "resolution": "720p", "aspect_ratio": "9:16", "duration": 5})
    );
    assert_eq!(seen[1].path, "/api/v1/videos/job-1");
    assert_eq!(
        (seen[4].path.as_str(), seen[4].query.as_str()),
        ("/api/v1/videos/job-2/content", "index=0")
    );
    assert_eq!(
        seen[4].header("authorization"),
        Some(format!("Bearer {OPENROUTER_KEY}").as_str())
    );
}

#[tokio::test]
async fn openrouter_402_is_out_of_credit_and_fatal_and_429_waits_as_told() {
    let (origin, api) = mock(vec![
        reply(429, json!({"error": {"code": 429, "message": "Rate limit exceeded"}})).header("retry-after", "0.2"),
        reply(402, json!({"error": {"code": 402, "message": "Insufficient credits. Add more using https://openrouter.ai/credits"}})),
    ])
    .await;
    let client = openrouter_client(&format!("{origin}/api/v1"));
    let req = JobRequest {
        model: "google/veo-3.1-lite".into(),
        ..fox(1, 4)
    };
    let err = client.create(&req).await.unwrap_err();
    assert!(
        matches!(err, ApiError::OutOfCredit { .. }) && err.is_fatal(),
        "{err}"
    );
    assert!(
        err.to_string().contains("Insufficient credits")
            && !err.to_string().contains(OPENROUTER_KEY)
    );
    let seen = api.seen();
    assert_eq!(seen.len(), 2);
    assert!(
        seen[1].at - seen[0].at >= Duration::from_millis(190),
        "Retry-After honoured"
    );
}

/// A small PNG (its bytes are never looked into by the protocols, only carried).
fn png_image(role: crate::catalogue::ImageRole, field: Option<&str>) -> crate::api::RequestImage {
    let bytes = b"\x89PNG\r\n\x1a\nnot really the rest of a png".to_vec();
    crate::api::RequestImage {
        role,
        format: crate::catalogue::ImageFormat::Png,
        sha256: crate::cache_key::hex(&Sha256::digest(&bytes)),
        bytes: Arc::new(bytes),
        field: field.map(str::to_owned),
        frame_index: None,
    }
}

fn data_uri_of(img: &crate::api::RequestImage) -> String {
    use base64::Engine as _;
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(img.bytes.as_slice())
    )
}

#[tokio::test]
async fn azure_sends_images_as_multipart_files_placed_by_inpaint_items() {
    use crate::catalogue::ImageRole;
    let (origin, mock) = mock(vec![reply(200, azure_job("task_1", "queued", &[]))]).await;
    let client = azure_client(&origin, &fast_options());
    let mut first = png_image(ImageRole::FirstFrame, None);
    first.frame_index = Some(0);
    let mut last = png_image(ImageRole::LastFrame, None);
    last.frame_index = Some(149);
    let req = JobRequest {
        images: vec![first.clone(), last],
        ..fox(1, 5)
    };
    client.create(&req).await.unwrap();
    let seen = mock.seen();
    let ct = seen[0].headers["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("multipart/form-data; boundary="), "{ct}");
    let body = String::from_utf8_lossy(&seen[0].body).into_owned();
    for part in [
        "name=\"prompt\"",
        "name=\"width\"",
        "name=\"n_seconds\"",
        "name=\"inpaint_items\"",
    ] {
        assert!(body.contains(part), "{part}: {body}");
    }
    assert_eq!(
        body.matches("name=\"files\"; filename=").count(),
        2,
        "{body}"
    );
    assert!(body.contains("Content-Type: image/png"), "{body}");
    assert!(
        body.contains(r#"[{"file_name":"first_frame-0.png","frame_index":0,"type":"image"},{"file_name":"last_frame-1.png","frame_index":149,"type":"image"}]"#),
        "{body}"
    );
    assert!(contains_bytes(&seen[0].body, &first.bytes));
}

fn contains_bytes(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn the_videos_api_sends_the_first_frame_as_an_input_reference_file() {
    use crate::catalogue::ImageRole;
    let (origin, mock) = mock(vec![reply(200, openai_video("video_1", "queued", 0))]).await;
    let client = openai_client(&origin, &fast_options());
    let img = png_image(ImageRole::FirstFrame, Some("input_reference"));
    let req = JobRequest {
        model: "sora-2".into(),
        images: vec![img.clone()],
        ..fox(1, 4)
    };
    client.create(&req).await.unwrap();
    let sent = mock.seen()[0].body.clone();
    let body = String::from_utf8_lossy(&sent).into_owned();
    assert!(
        body.contains("name=\"input_reference\"; filename=\"first_frame-0.png\""),
        "{body}"
    );
    assert!(body.contains("name=\"seconds\"\r\n\r\n4\r\n"), "{body}");
    assert!(contains_bytes(&sent, &img.bytes));
    // A last frame is not something this protocol can carry: refused before sending.
    let req = JobRequest {
        model: "sora-2".into(),
        images: vec![png_image(ImageRole::LastFrame, None)],
        ..fox(1, 4)
    };
    assert!(matches!(
        client.create(&req).await,
        Err(ApiError::Config { .. })
    ));
    assert_eq!(mock.seen().len(), 1);
}

#[test]
fn marketplaces_send_images_as_data_uris_in_the_models_fields_and_openrouter_as_frame_images() {
    use crate::catalogue::ImageRole;
    let first = png_image(ImageRole::FirstFrame, Some("image"));
    let last = png_image(ImageRole::LastFrame, Some("last_frame_image"));
    let mut req = marketplace_request(Api::Replicate, "seedance-2.0");
    req.images = vec![first.clone(), last.clone()];
    let body = crate::api::replicate::ReplicateClient::request_body(&req);
    assert_eq!(body["input"]["image"], data_uri_of(&first), "{body}");
    assert_eq!(body["input"]["last_frame_image"], data_uri_of(&last));
    let mut req = marketplace_request(Api::Replicate, "veo-3.1");
    req.images = vec![
        png_image(ImageRole::Reference, Some("reference_images")),
        png_image(ImageRole::Reference, Some("reference_images")),
    ];
    let body = crate::api::replicate::ReplicateClient::request_body(&req);
    assert_eq!(
        body["input"]["reference_images"].as_array().unwrap().len(),
        2
    );
    let mut req = marketplace_request(Api::Fal, "seedance-2.0-image-to-video");
    req.images = vec![png_image(ImageRole::FirstFrame, Some("image_url"))];
    let body = crate::api::fal::FalClient::request_body(&req);
    assert_eq!(body["image_url"], data_uri_of(&req.images[0]));
    let mut req = marketplace_request(Api::Openrouter, "google/veo-3.1-lite");
    req.images = vec![
        png_image(ImageRole::FirstFrame, None),
        png_image(ImageRole::LastFrame, None),
    ];
    let body = crate::api::openrouter::OpenRouterClient::request_body(&req);
    assert_eq!(
        body["frame_images"],
        json!([
            {"type": "image_url", "image_url": {"url": data_uri_of(&req.images[0])}, "frame_type": "first_frame"},
            {"type": "image_url", "image_url": {"url": data_uri_of(&req.images[1])}, "frame_type": "last_frame"},
        ])
    );
    // An image's bytes never show in a Debug print (logs, panics).
    let shown = format!("{:?}", req.images[0]);
    assert!(
        !shown.contains("base64") && shown.contains("bytes"),
        "{shown}"
    );
}
