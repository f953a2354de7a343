//! A real OpenAI-compatible gateway in front of the emulator: the LiteLLM proxy
//! (`litellm[proxy]` from PyPI, which `scripts/test.sh` installs), started on loopback
//! with a config this test writes, routes `/v1/videos` of a gateway model name to the
//! emulator's Sora 2. `shotlist render` with `api: openai-videos` and the model in
//! `shotlist.models.yaml` renders through it end to end.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

const MASTER_KEY: &str = "sk-litellm-master-Hq7mZ2";

struct Proxy {
    child: Process,
    port: u16,
    log: std::path::PathBuf,
}

fn litellm() -> String {
    std::env::var("SHOTLIST_TEST_LITELLM").unwrap_or_else(|_| "litellm".into())
}

/// Starts the proxy with `config` and waits until it answers (it takes some seconds).
async fn start_proxy(dir: &std::path::Path, config: &str) -> Proxy {
    let found = Command::new(litellm()).arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "the LiteLLM proxy (`{}`) is needed by this test and is missing: pip install 'litellm[proxy]' (bash scripts/test.sh does it, and sets SHOTLIST_TEST_LITELLM)",
        litellm()
    );
    let config_path = dir.join("litellm.yaml");
    std::fs::write(&config_path, config).unwrap();
    let port = free_port();
    let log = dir.join("litellm.log");
    let child = Command::new(litellm())
        .arg("--config")
        .arg(&config_path)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        // Offline: the bundled model cost map, no telemetry.
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .env("LITELLM_TELEMETRY", "False")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("the LiteLLM proxy starts");
    let mut proxy = Proxy {
        child: Process(child),
        port,
        log,
    };
    let client = reqwest_client();
    let started = Instant::now();
    loop {
        let url = format!("http://127.0.0.1:{port}/health/liveliness");
        if client
            .get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return proxy;
        }
        if let Ok(Some(status)) = proxy.child.try_wait() {
            panic!("the LiteLLM proxy exited ({status}): {}", read(&proxy.log));
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "the LiteLLM proxy did not come up: {}",
            read(&proxy.log)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn read(path: &std::path::Path) -> String {
    let mut s = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.read_to_string(&mut s);
    }
    s.chars()
        .rev()
        .take(4000)
        .collect::<String>()
        .chars()
        .rev()
        .collect()
}

/// (width, height, seconds) of a video, as ffprobe reads it.
fn probe(path: &std::path::Path) -> (u64, u64, f64) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["stream=width,height:format=duration", "-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe runs (bash scripts/test.sh installs it)");
    assert!(out.status.success(), "ffprobe rejected {}", path.display());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        v["streams"][0]["width"].as_u64().unwrap_or(0),
        v["streams"][0]["height"].as_u64().unwrap_or(0),
        v["format"]["duration"]
            .as_str()
            .and_then(|d| d.parse().ok())
            .unwrap_or(-1.0),
    )
}

const MODELS: &str = "version: 1
models:
  - id: studio-video
    provider: openai-videos
    provider_model: studio-video
    description: Sora 2 behind the studio's LiteLLM proxy.
    sizes:
      - { size: 1280x720, max_takes: 2 }
      - { size: 720x1280, max_takes: 2 }
    default_size: 1280x720
    seconds: { one_of: [4, 8, 12] }
    default_seconds: 4
    default_takes: 1
    prompt_chars: { min: 1, max: 32000 }
";

const BOARD: &str = "version: 1
api: openai-videos
defaults:
  model: studio-video
shots:
  - id: fox
    prompt: A red fox crosses a snowfield at dawn.
  - id: owl
    prompt: An owl turns its head under a full moon.
    size: 720x1280
    seconds: 8
    variants: 2
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storyboard_renders_through_a_real_litellm_proxy() {
    let emu = emulator(emulator_config()).await;
    let p = Project::new(BOARD);
    std::fs::write(p.path("shotlist.models.yaml"), MODELS).unwrap();
    let config = format!(
        "model_list:\n  - model_name: studio-video\n    litellm_params:\n      model: openai/sora-2\n      api_base: {}/v1\n      api_key: {KEY}\ngeneral_settings:\n  master_key: {MASTER_KEY}\n",
        emu.base_url()
    );
    let proxy_dir = tempfile::tempdir().unwrap();
    let proxy = start_proxy(proxy_dir.path(), &config).await;
    let endpoint = format!("http://127.0.0.1:{}/v1", proxy.port);
    let render = |p: &Project| {
        let mut cmd = p.command_at(&endpoint, &[]);
        cmd.env("OPENAI_API_KEY", MASTER_KEY);
        async move {
            let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
                .await
                .unwrap();
            assert_no_key(&out);
            out
        }
    };

    let out = render(&p).await;
    assert_eq!(code(&out), 0, "{}\n{}", text(&out), read(&proxy.log));
    assert_eq!(
        stats(&emu).jobs_created,
        3,
        "one job a take, through the proxy"
    );
    p.assert_outputs_match_lock();
    for (file, w, h, s) in [
        ("fox.mp4", 1280, 720, 4.0),
        ("owl.mp4", 720, 1280, 8.0),
        ("owl-2.mp4", 720, 1280, 8.0),
    ] {
        let (pw, ph, ps) = probe(&p.path(&format!("renders/{file}")));
        assert_eq!((pw, ph), (w, h), "{file}");
        assert!((ps - s).abs() < 0.1, "{file}: {ps} s");
    }
    let lock = p.lock();
    assert!(
        lock.shots
            .values()
            .all(|s| s.endpoint == format!("127.0.0.1:{}", proxy.port))
    );

    // A rerun asks nothing of the proxy (so nothing reaches the emulator either).
    let requests = stats(&emu).requests_total;
    let out = render(&p).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(
        text(&out).contains("0 requests") || text(&out).contains("2 skipped"),
        "{}",
        text(&out)
    );
    assert_eq!(stats(&emu).requests_total, requests);

    // One edited prompt: one job.
    let board = std::fs::read_to_string(p.path("shotlist.yaml")).unwrap();
    std::fs::write(
        p.path("shotlist.yaml"),
        board.replace("red fox", "grey fox"),
    )
    .unwrap();
    let out = render(&p).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(stats(&emu).jobs_created, 4);
    p.assert_outputs_match_lock();
    p.assert_no_key_in_files();
    assert!(!contains(
        &std::fs::read(p.path("shotlist.lock")).unwrap(),
        MASTER_KEY.as_bytes()
    ));
    drop(proxy);
    emu.shutdown().await;
}
