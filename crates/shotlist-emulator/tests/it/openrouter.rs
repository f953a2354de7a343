//! OpenRouter's video generation API over real HTTP: submit (202), statuses to
//! `completed`, the unsigned URL on the media host and the content route with the key,
//! per-model 400s, the credit (402), 429 with `X-RateLimit-*`, failures, expiry and the
//! model list built from the catalogue.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use serde_json::{Value, json};
use shotlist_emulator::{EmulatorConfig, FaultSpec};
use shotlist_models::catalogue::{Catalogue, Model};
use shotlist_models::limits::{Api, SecondsRule, Size};

use crate::support::*;

const KEY: &str = "sk-or-v1-emulator-test";

fn catalogue_model(name: &str) -> &'static Model {
    Catalogue::builtin()
        .find(Api::Openrouter, name)
        .expect("a catalogue model")
}

/// The smallest size and shortest length of `model`, as shotlist would send them.
fn quick_body(model: &str, prompt: &str) -> (Value, Size, u32) {
    let (size, seconds) = smallest(Api::Openrouter, model);
    (openrouter_body(model, prompt, size, seconds), size, seconds)
}

/// The catalogue's price of `seconds` of `model` at `size`.
fn price_of(model: &str, size: Size, seconds: u32) -> f64 {
    let price = catalogue_model(model)
        .price
        .as_ref()
        .expect("a priced model");
    price.per_second_at(size) * f64::from(seconds)
}

fn with_key(cfg: EmulatorConfig) -> EmulatorConfig {
    EmulatorConfig {
        api_key: Some(KEY.into()),
        ..cfg
    }
}

async fn wait_for(c: &reqwest::Client, job: &Value) -> Vec<Value> {
    poll(c, job["polling_url"].as_str().unwrap(), openrouter_finished).await
}

fn assert_error_shape(a: &Answer) {
    assert_eq!(
        a.body["error"]["code"],
        json!(a.status.as_u16()),
        "{}",
        a.body
    );
    assert!(a.body["error"]["message"].is_string(), "{}", a.body);
}

#[tokio::test]
async fn openrouter_job_goes_pending_to_completed_with_an_unsigned_url_and_content() {
    let emu = start(with_key(fast())).await;
    let (c, base) = (bearer_client(KEY), emu.base_url());
    let (body, size, seconds) = quick_body(OPENROUTER_MODEL, "a lighthouse at dusk");
    let created = openrouter_create(&c, &base, &body).await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{}", created.body);
    let job = &created.body;
    let id = job["id"].as_str().unwrap();
    assert!(id.starts_with("gen-vid-"), "{id}");
    assert_eq!(job["status"], "pending");
    assert_eq!(job["polling_url"], format!("{base}{OR}/{id}").as_str());
    assert!(job["generation_id"].as_str().unwrap().starts_with("gen-"));
    assert!(job.get("unsigned_urls").is_none() && job.get("usage").is_none());

    let seen = wait_for(&c, job).await;
    let order = ["pending", "in_progress", "completed"];
    let ranks: Vec<usize> = seen
        .iter()
        .map(|b| order.iter().position(|o| *o == b["status"]).unwrap())
        .collect();
    assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "{ranks:?}");
    assert!(seen.iter().any(|b| b["status"] == "in_progress"));
    let done = seen.last().unwrap();
    assert_eq!(done["status"], "completed");
    let cost = done["usage"]["cost"].as_f64().unwrap();
    assert!((cost - price_of(OPENROUTER_MODEL, size, seconds)).abs() < 1e-9);
    assert_eq!(done["usage"]["is_byok"], false);
    let url = done["unsigned_urls"][0].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/files/", emu.media_base_url())),
        "{url}"
    );

    // The unsigned URL needs no credential, and the media host counts it.
    let before = emu.stats();
    let bytes = client()
        .get(url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_mp4(&bytes);
    let stats = emu.stats();
    assert_eq!(stats.media_requests - before.media_requests, 1);
    assert_eq!(stats.media_requests_with_credential, 0);

    // The content route takes the key, and ranges.
    let content = c
        .get(format!("{base}{OR}/{id}/content?index=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(content.status(), StatusCode::OK);
    assert_eq!(content.headers()["content-type"], "video/mp4");
    assert_eq!(content.bytes().await.unwrap(), bytes);
    let part = c
        .get(format!("{base}{OR}/{id}/content"))
        .header("range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.bytes().await.unwrap().len(), 10);
    let anonymous = answer(client().get(format!("{base}{OR}/{id}/content"))).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_error_shape(&anonymous);
    let wrong = answer(bearer_client("sk-or-wrong").get(format!("{base}{OR}/{id}"))).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let index = answer(c.get(format!("{base}{OR}/{id}/content?index=1"))).await;
    assert_eq!(index.status, StatusCode::BAD_REQUEST);
    assert_error_shape(&index);
    let missing = answer(c.get(format!("{base}{OR}/gen-vid-0-missing"))).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_error_shape(&missing);

    // `size` stands for resolution + aspect ratio.
    let mut by_size = json!({"model": OPENROUTER_MODEL, "prompt": "a lighthouse at dusk"});
    by_size["size"] = json!(size.to_string());
    by_size["duration"] = json!(seconds);
    let second = openrouter_create(&c, &base, &by_size).await;
    assert_eq!(second.status, StatusCode::ACCEPTED, "{}", second.body);
    let stats = emu.stats();
    assert_eq!(stats.jobs_created, 2);
    assert_eq!(
        stats.creates_by_prompt_hash.values().copied().max(),
        Some(2)
    );
    assert_eq!(stats.credit_charged_usd, 2.0 * cost);
    emu.shutdown().await;
}

#[tokio::test]
async fn openrouter_refuses_what_the_model_does_not_take() {
    let emu = start(fast()).await;
    let (c, base) = (client(), emu.base_url());
    let model = catalogue_model(OPENROUTER_MODEL);
    let (body, size, _) = quick_body(OPENROUTER_MODEL, "a kite");
    let longest = match model.seconds.rule().unwrap() {
        SecondsRule::Range { max, .. } => max,
        SecondsRule::OneOf(v) => *v.iter().max().unwrap(),
    };
    let with = |field: &str, value: Value| {
        let mut b = body.clone();
        b[field] = value;
        b
    };
    let bigger = Size::new(size.width * 10, size.height * 10);
    for (bad, param) in [
        (with("duration", json!(longest + 1)), "duration"),
        (with("duration", json!("5s")), "duration"),
        (with("resolution", json!("9000p")), "resolution"),
        (with("aspect_ratio", json!("7:5")), "aspect_ratio"),
        (with("size", json!(bigger.to_string())), "size"),
        (with("size", json!("wide")), "size"),
        (with("seed", json!("one")), "seed"),
        (with("generate_audio", json!("yes")), "generate_audio"),
        (with("prompt", json!("")), "prompt"),
        (
            with("callback_url", json!("http://example.com/hook")),
            "callback_url",
        ),
        (with("model", json!(7)), "model"),
    ] {
        let a = openrouter_create(&c, &base, &bad).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}: {}", a.body);
        assert_error_shape(&a);
        assert_eq!(a.body["error"]["metadata"]["param"], param, "{}", a.body);
    }
    // `size` and the fields it stands for must agree.
    let other = model.sizes.iter().find(|e| e.size != size).unwrap();
    let clash = openrouter_create(&c, &base, &with("size", json!(other.size.to_string()))).await;
    assert_eq!(clash.status, StatusCode::BAD_REQUEST, "{}", clash.body);
    let mut no_model = body.clone();
    no_model.as_object_mut().unwrap().remove("model");
    let a = openrouter_create(&c, &base, &no_model).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = answer(
        c.post(format!("{base}{OR}"))
            .header("content-type", "application/json")
            .body("{not json"),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_error_shape(&a);
    let unknown = openrouter_create(&c, &base, &with("model", json!("nobody/nothing"))).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_error_shape(&unknown);
    let route = answer(c.get(format!("{base}/api/v1/nothing"))).await;
    assert_eq!(route.status, StatusCode::NOT_FOUND);
    assert_error_shape(&route);
    assert_eq!(emu.stats().jobs_created, 0);
    emu.shutdown().await;
}

#[tokio::test]
async fn openrouter_answers_402_when_the_credit_runs_out() {
    let (body, size, seconds) = quick_body(OPENROUTER_MODEL, "a paid kite");
    let one = price_of(OPENROUTER_MODEL, size, seconds);
    let emu = start(EmulatorConfig {
        credit_usd: Some(one * 1.5),
        ..fast()
    })
    .await;
    let (c, base) = (client(), emu.base_url());
    assert_eq!(
        openrouter_create(&c, &base, &body).await.status,
        StatusCode::ACCEPTED
    );
    let refused = openrouter_create(&c, &base, &body).await;
    assert_eq!(
        refused.status,
        StatusCode::PAYMENT_REQUIRED,
        "{}",
        refused.body
    );
    assert_error_shape(&refused);
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Insufficient credits")
    );
    // A model whose price is unknown charges nothing.
    let (free, _, _) = quick_body(OPENROUTER_UNPRICED_MODEL, "an unpriced kite");
    assert_eq!(
        openrouter_create(&c, &base, &free).await.status,
        StatusCode::ACCEPTED
    );
    let stats = emu.stats();
    assert_eq!(stats.jobs_created, 2);
    assert!((stats.credit_charged_usd - one).abs() < 1e-9);
    assert_eq!(stats.responses_by_status["402"], 1);
    emu.shutdown().await;

    let emu = start(EmulatorConfig {
        faults: "402=1".parse().unwrap(),
        ..fast()
    })
    .await;
    let refused = openrouter_create(&c, &emu.base_url(), &body).await;
    assert_eq!(refused.status, StatusCode::PAYMENT_REQUIRED);
    assert_error_shape(&refused);
    let stats = emu.stats();
    assert_eq!((stats.jobs_created, stats.faults_injected["402"]), (0, 1));
    emu.shutdown().await;
}

fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn assert_rate_limit_headers(a: &Answer, limit: u64) {
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.body);
    assert_error_shape(a);
    assert!(a.header_number("retry-after") >= 1);
    assert_eq!(a.header_number("x-ratelimit-limit"), limit);
    assert_eq!(a.header_number("x-ratelimit-remaining"), 0);
    let reset = a.header_number("x-ratelimit-reset");
    let now = unix_ms_now();
    assert!(
        reset > now - 1_000 && reset <= now + 61_000,
        "reset {reset} at {now}"
    );
}

#[tokio::test]
async fn openrouter_429_carries_retry_after_and_rate_limit_headers() {
    let emu = start(EmulatorConfig {
        time_scale: 1.0,
        rpm: 1,
        ..fast()
    })
    .await;
    let (c, base) = (client(), emu.base_url());
    let first = answer(c.get(format!("{base}{OR}/models"))).await;
    assert_eq!(first.status, StatusCode::OK);
    let limited = answer(c.get(format!("{base}{OR}/models"))).await;
    assert_rate_limit_headers(&limited, 1);
    emu.shutdown().await;

    let emu = start(EmulatorConfig {
        faults: "429=1".parse().unwrap(),
        ..fast()
    })
    .await;
    let (body, _, _) = quick_body(OPENROUTER_MODEL, "a kite");
    let injected = openrouter_create(&c, &emu.base_url(), &body).await;
    let limit = Catalogue::builtin()
        .provider(Api::Openrouter)
        .requests_per_minute;
    assert_rate_limit_headers(&injected, u64::from(limit));
    assert_eq!(emu.stats().jobs_created, 0);
    emu.shutdown().await;
}

#[tokio::test]
async fn openrouter_jobs_fail_on_moderation_and_injected_faults() {
    let emu = start(fast()).await;
    let (c, base) = (client(), emu.base_url());
    let (body, _, _) = quick_body(OPENROUTER_MODEL, "a forbidden kite");
    let created = openrouter_create(&c, &base, &body).await;
    assert_eq!(created.status, StatusCode::ACCEPTED);
    let failed = wait_for(&c, &created.body).await;
    let last = failed.last().unwrap();
    assert_eq!(last["status"], "failed");
    assert!(
        last["error"].as_str().unwrap().contains("moderation"),
        "{last}"
    );
    assert!(last.get("unsigned_urls").is_none() && last.get("usage").is_none());
    let id = last["id"].as_str().unwrap();
    let content = answer(c.get(format!("{base}{OR}/{id}/content"))).await;
    assert_eq!(content.status, StatusCode::NOT_FOUND);
    assert_error_shape(&content);
    emu.shutdown().await;

    let emu = start(EmulatorConfig {
        faults: FaultSpec {
            p_fail: 1.0,
            ..FaultSpec::none()
        },
        ..fast()
    })
    .await;
    let (body, _, _) = quick_body(OPENROUTER_MODEL, "a kite");
    let created = openrouter_create(&c, &emu.base_url(), &body).await;
    let last = wait_for(&c, &created.body).await.pop().unwrap();
    assert_eq!(last["status"], "failed");
    assert!(
        last["error"].as_str().unwrap().contains("provider"),
        "{last}"
    );
    assert_eq!(emu.stats().faults_injected["fail"], 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn openrouter_jobs_expire_unfinished_after_retention_or_completed_after_it() {
    // Shorter than any job: it expires before it completes, and stays expired.
    let emu = start(EmulatorConfig {
        retention: Duration::from_secs(30),
        ..fast()
    })
    .await;
    let (c, base) = (client(), emu.base_url());
    let (body, _, _) = quick_body(OPENROUTER_MODEL, "a slow kite");
    let created = openrouter_create(&c, &base, &body).await;
    let seen = wait_for(&c, &created.body).await;
    assert!(seen.iter().all(|b| b["status"] != "completed"));
    let last = seen.last().unwrap();
    assert_eq!(last["status"], "expired");
    assert_eq!(last["error"], "Job exceeded maximum time to live");
    emu.shutdown().await;

    // Longer than any job: it completes, then its video goes.
    let emu = start(EmulatorConfig {
        retention: Duration::from_secs(400),
        ..fast()
    })
    .await;
    let base = emu.base_url();
    let created = openrouter_create(&c, &base, &body).await;
    let done = wait_for(&c, &created.body).await.pop().unwrap();
    assert_eq!(done["status"], "completed");
    let url = done["unsigned_urls"][0].as_str().unwrap().to_owned();
    let id = done["id"].as_str().unwrap().to_owned();
    let expired = poll(&c, &format!("{base}{OR}/{id}"), |b| {
        b["status"] == "expired"
    })
    .await;
    let last = expired.last().unwrap();
    assert!(last.get("unsigned_urls").is_none(), "{last}");
    assert_eq!(
        c.get(&url).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let content = answer(c.get(format!("{base}{OR}/{id}/content"))).await;
    assert_eq!(content.status, StatusCode::NOT_FOUND);
    emu.shutdown().await;
}

#[tokio::test]
async fn openrouter_lists_the_catalogue_models() {
    let emu = start(fast()).await;
    let (c, base) = (client(), emu.base_url());
    let listed = answer(c.get(format!("{base}{OR}/models"))).await;
    assert_eq!(listed.status, StatusCode::OK);
    let data = listed.body["data"].as_array().unwrap();
    let models: Vec<&Model> = Catalogue::builtin().models_of(Api::Openrouter).collect();
    assert_eq!(data.len(), models.len());
    for (entry, model) in data.iter().zip(&models) {
        assert_eq!(entry["id"], model.provider_model.as_str());
        let durations: Vec<u32> = match model.seconds.rule().unwrap() {
            SecondsRule::Range { min, max } => (min..=max).collect(),
            SecondsRule::OneOf(v) => v,
        };
        assert_eq!(entry["supported_durations"], json!(durations));
        let sizes: Vec<String> = model.sizes.iter().map(|e| e.size.to_string()).collect();
        assert_eq!(entry["supported_sizes"], json!(sizes));
        for field in ["resolution", "aspect_ratio"] {
            let mut values: Vec<&str> = model
                .sizes
                .iter()
                .map(|e| e.fields[field].as_str())
                .collect();
            values.dedup();
            let listed: Vec<&str> = entry[format!("supported_{field}s")]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            let mut unique = values.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(listed.len(), unique.len(), "{field}: {listed:?}");
            assert!(values.iter().all(|v| listed.contains(v)));
        }
        let has = |name: &str| model.params.iter().any(|p| p.name == name);
        assert_eq!(entry["generate_audio"], has("generate_audio"));
        assert_eq!(entry["seed"], has("seed"));
        match &model.price {
            Some(price) => assert_eq!(
                entry["pricing_skus"]["duration_seconds"],
                price.per_second.to_string().as_str()
            ),
            None => assert!(entry["pricing_skus"].is_null()),
        }
    }
    emu.shutdown().await;
}
