//! Replicate's predictions API over real HTTP: lifecycle, versions, `Prefer: wait`,
//! failures, cancel, `Cancel-After`, the one-hour data removal, the create rate, per-model
//! 422s, the queue beyond the slots, auth and cursor pagination.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use shotlist_emulator::EmulatorConfig;
use shotlist_models::limits::{Api, Size};

use crate::support::*;

fn input(prompt: &str) -> Value {
    let (size, seconds) = smallest(Api::Replicate, REPLICATE_MODEL);
    model_input(Api::Replicate, REPLICATE_MODEL, prompt, size, seconds)
}

async fn wait_for(c: &reqwest::Client, prediction: &Value) -> Vec<Value> {
    poll(
        c,
        prediction["urls"]["get"].as_str().unwrap(),
        replicate_finished,
    )
    .await
}

#[tokio::test]
async fn replicate_prediction_starts_processes_and_succeeds_with_an_output_uri() {
    let emu = start(fast()).await;
    let (c, base) = (client(), emu.base_url());
    let size = Size::new(1280, 720);
    let body = model_input(Api::Replicate, REPLICATE_MODEL, "a harbour", size, 5);
    let created = replicate_create(&c, &base, REPLICATE_MODEL, &body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let p = &created.body;
    let id = p["id"].as_str().unwrap();
    assert_eq!(id.len(), 26);
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    );
    assert_eq!(p["status"], "starting");
    assert_eq!(p["model"], REPLICATE_MODEL);
    assert_eq!(p["input"], body);
    assert_eq!(p["output"], Value::Null);
    assert_eq!(p["data_removed"], false);
    assert_eq!(p["source"], "api");
    assert_eq!(
        p["urls"]["get"],
        format!("{base}/v1/predictions/{id}").as_str()
    );

    let seen = wait_for(&c, p).await;
    let order = ["starting", "processing", "succeeded"];
    let ranks: Vec<usize> = seen
        .iter()
        .map(|b| order.iter().position(|o| *o == b["status"]).unwrap())
        .collect();
    assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "{ranks:?}");
    assert!(seen.iter().any(|b| b["status"] == "processing"));
    let done = seen.last().unwrap();
    assert_eq!(done["status"], "succeeded");
    assert!(done["started_at"].is_string() && done["completed_at"].is_string());
    assert!(done["metrics"]["predict_time"].as_f64().unwrap() > 0.0);
    assert!(done["logs"].as_str().unwrap().contains("100%"));
    let output = done["output"].as_str().unwrap();
    assert!(
        output.starts_with(&format!("{}/files/", emu.media_base_url())),
        "{output}"
    );
    let before = emu.stats();
    let bytes = c.get(output).send().await.unwrap().bytes().await.unwrap();
    assert_mp4(&bytes);
    let with_token = c.get(output).bearer_auth("r8_token").send().await.unwrap();
    assert_eq!(with_token.status(), StatusCode::OK);
    let stats = emu.stats();
    assert_eq!(stats.media_requests - before.media_requests, 2);
    assert_eq!(
        stats.media_requests_with_credential - before.media_requests_with_credential,
        1
    );
    let cancel = answer(c.post(format!("{base}/v1/predictions/{id}/cancel"))).await;
    assert_eq!(cancel.status, StatusCode::OK);
    assert_eq!(
        cancel.body["status"], "succeeded",
        "a finished prediction stays so"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn replicate_versions_name_models_three_ways() {
    let emu = start(fast()).await;
    let (c, base) = (client(), emu.base_url());
    let first = replicate_create(&c, &base, REPLICATE_MODEL, &input("one"))
        .await
        .body;
    let version = first["version"].as_str().unwrap().to_owned();
    assert_eq!(version.len(), 64);
    let create = |version: String| {
        let c = c.clone();
        let url = format!("{base}/v1/predictions");
        async move {
            answer(
                c.post(url)
                    .json(&json!({"version": version, "input": input("v")})),
            )
            .await
        }
    };
    for v in [
        REPLICATE_MODEL.to_owned(),
        format!("{REPLICATE_MODEL}:{version}"),
        version.clone(),
    ] {
        let a = create(v.clone()).await;
        assert_eq!(a.status, StatusCode::CREATED, "{v}: {}", a.body);
        assert_eq!(a.body["model"], REPLICATE_MODEL);
    }
    for bad in [
        format!("{REPLICATE_MODEL}:{}", "0".repeat(64)),
        "nobody/nothing".into(),
    ] {
        let a = create(bad.clone()).await;
        assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert_eq!(a.body["status"], 422);
    }
    let unknown = replicate_create(&c, &base, "nobody/nothing", &input("x")).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(
        unknown.headers["content-type"], "application/problem+json",
        "{:?}",
        unknown.headers
    );
    for key in ["type", "title", "status", "detail"] {
        assert!(unknown.body.get(key).is_some(), "{key}: {}", unknown.body);
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn replicate_prefer_wait_holds_until_done_or_answers_starting() {
    let emu = start(fast()).await;
    let (c, base) = (client(), emu.base_url());
    let waited = answer(
        c.post(format!("{base}/v1/models/{REPLICATE_MODEL}/predictions"))
            .header("prefer", "wait")
            .json(&json!({"input": input("held")})),
    )
    .await;
    assert_eq!(waited.status, StatusCode::CREATED, "{}", waited.body);
    assert_eq!(waited.body["status"], "succeeded");
    assert!(waited.body["output"].is_string());
    emu.shutdown().await;

    // Real time: a job takes over a minute, longer than `wait=1`.
    let emu = start(EmulatorConfig {
        time_scale: 1.0,
        ..fast()
    })
    .await;
    let started = Instant::now();
    let timed_out = answer(
        client()
            .post(format!(
                "{}/v1/models/{REPLICATE_MODEL}/predictions",
                emu.base_url()
            ))
            .header("prefer", "wait=1")
            .json(&json!({"input": input("slow")})),
    )
    .await;
    let held = started.elapsed();
    assert!(
        held >= Duration::from_millis(950) && held < Duration::from_secs(5),
        "{held:?}"
    );
    assert_eq!(timed_out.status, StatusCode::ACCEPTED);
    assert_eq!(timed_out.body["status"], "starting");
    emu.shutdown().await;
}

#[tokio::test]
async fn replicate_failures_say_why() {
    let emu = start(fast()).await;
    let (c, base) = (client(), emu.base_url());
    let p = replicate_create(&c, &base, REPLICATE_MODEL, &input("a FORBIDDEN scene"))
        .await
        .body;
    let done = wait_for(&c, &p).await;
    let last = done.last().unwrap();
    assert_eq!(last["status"], "failed");
    assert!(
        last["error"]
            .as_str()
            .unwrap()
            .contains("flagged as sensitive"),
        "{last}"
    );
    assert_eq!(last["output"], Value::Null);
    emu.shutdown().await;

    let emu = start(EmulatorConfig {
        faults: "fail=1".parse().unwrap(),
        ..fast()
    })
    .await;
    let (c, base) = (client(), emu.base_url());
    let p = replicate_create(&c, &base, REPLICATE_MODEL, &input("doomed"))
        .await
        .body;
    let last = wait_for(&c, &p).await.pop().unwrap();
    assert_eq!(last["status"], "failed");
    assert!(last["error"].is_string());
    emu.shutdown().await;
}

#[tokio::test]
async fn replicate_cancel_and_cancel_after_end_predictions() {
    // 10x: a job takes 6 s or more.
    let emu = start(EmulatorConfig {
        max_running: 1,
        time_scale: 10.0,
        ..fast()
    })
    .await;
    let (c, base) = (client(), emu.base_url());
    let running = replicate_create(&c, &base, REPLICATE_MODEL, &input("first"))
        .await
        .body;
    let waiting = replicate_create(&c, &base, REPLICATE_MODEL, &input("second"))
        .await
        .body;
    assert_eq!(
        waiting["status"], "starting",
        "beyond the slots: queued, not refused"
    );
    assert_eq!(emu.stats().responses_429, 0);
    let id = running["id"].as_str().unwrap();
    let canceled = answer(c.post(format!("{base}/v1/predictions/{id}/cancel"))).await;
    assert_eq!(canceled.status, StatusCode::OK, "{}", canceled.body);
    assert_eq!(canceled.body["status"], "canceled");
    assert!(canceled.body["completed_at"].is_string());
    let again = answer(c.post(format!("{base}/v1/predictions/{id}/cancel"))).await;
    assert_eq!(again.body["status"], "canceled");
    let missing = answer(c.post(format!("{base}/v1/predictions/nope/cancel"))).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // A deadline that comes while it waits for a slot aborts it.
    let blocker = replicate_create(&c, &base, REPLICATE_MODEL, &input("blocker"))
        .await
        .body;
    let doomed = answer(
        c.post(format!("{base}/v1/models/{REPLICATE_MODEL}/predictions"))
            .header("cancel-after", "5s")
            .json(&json!({"input": input("deadline")})),
    )
    .await;
    assert_eq!(doomed.status, StatusCode::CREATED, "{}", doomed.body);
    assert!(doomed.body["deadline"].is_string());
    tokio::time::sleep(Duration::from_millis(600)).await;
    let aborted = answer(c.get(doomed.body["urls"]["get"].as_str().unwrap())).await;
    assert_eq!(aborted.body["status"], "aborted", "{}", aborted.body);
    assert_eq!(
        answer(c.get(blocker["urls"]["get"].as_str().unwrap()))
            .await
            .body["status"]
            .as_str()
            .map(|s| s != "aborted"),
        Some(true)
    );
    let too_short = answer(
        c.post(format!("{base}/v1/models/{REPLICATE_MODEL}/predictions"))
            .header("cancel-after", "2s")
            .json(&json!({"input": input("short")})),
    )
    .await;
    assert_eq!(too_short.status, StatusCode::BAD_REQUEST);
    emu.shutdown().await;
}

#[tokio::test]
async fn replicate_removes_data_an_hour_after_completion_and_keeps_the_prediction() {
    // 1200x: the data stays 1200 emulated s (1 s real) after completion.
    let emu = start(EmulatorConfig {
        time_scale: 1200.0,
        retention: Duration::from_secs(1200),
        ..fast()
    })
    .await;
    let (c, base) = (client(), emu.base_url());
    let p = replicate_create(&c, &base, REPLICATE_MODEL, &input("ephemeral"))
        .await
        .body;
    let done = wait_for(&c, &p).await.pop().unwrap();
    let output = done["output"].as_str().unwrap().to_owned();
    assert_eq!(
        c.get(&output).send().await.unwrap().status(),
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let later = answer(c.get(p["urls"]["get"].as_str().unwrap())).await;
    assert_eq!(
        later.status,
        StatusCode::OK,
        "the prediction is still readable"
    );
    assert_eq!(later.body["status"], "succeeded");
    assert_eq!(later.body["data_removed"], true);
    assert_eq!(later.body["output"], Value::Null);
    assert_eq!(later.body["input"], json!({}));
    assert_eq!(
        c.get(&output).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let list = answer(c.get(format!("{base}/v1/predictions"))).await;
    assert_eq!(list.body["results"][0]["id"], p["id"]);
    assert_eq!(list.body["results"][0]["data_removed"], true);
    emu.shutdown().await;
}

#[tokio::test]
async fn replicate_create_rate_is_limited_apart_from_other_requests() {
    // 60x: an emulated minute is one real second.
    let emu = start(EmulatorConfig {
        time_scale: 60.0,
        create_rpm: Some(2),
        ..fast()
    })
    .await;
    let (c, base) = (client(), emu.base_url());
    for i in 0..2 {
        let a = replicate_create(&c, &base, REPLICATE_MODEL, &input(&format!("p{i}"))).await;
        assert_eq!(a.status, StatusCode::CREATED);
    }
    let refused = replicate_create(&c, &base, REPLICATE_MODEL, &input("p2")).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .starts_with("Request was throttled. Your rate limit resets in ~"),
        "{}",
        refused.body
    );
    assert_eq!(refused.body["status"], 429);
    let wait = refused.header_number("retry-after");
    assert!((1..=2).contains(&wait), "real seconds: {wait}");
    let list = answer(c.get(format!("{base}/v1/predictions"))).await;
    assert_eq!(list.status, StatusCode::OK, "only creates count");
    tokio::time::sleep(Duration::from_millis(1050)).await;
    let again = replicate_create(&c, &base, REPLICATE_MODEL, &input("p3")).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    emu.shutdown().await;
}

#[tokio::test]
async fn replicate_checks_each_models_own_input_with_422s() {
    let emu = start(fast()).await;
    let (c, base) = (client(), emu.base_url());
    let cases = [
        (json!({"aspect_ratio": "16:9"}), "input.prompt", "required"),
        (
            json!({"prompt": "p", "resolution": "9000p"}),
            "input.resolution",
            "enum",
        ),
        (
            json!({"prompt": "p", "duration": "5"}),
            "input.duration",
            "type",
        ),
        (
            json!({"prompt": "p", "duration": 99}),
            "input.duration",
            "enum",
        ),
        (json!({"prompt": "p", "seed": -1}), "input.seed", "enum"),
    ];
    for (body, field, kind) in cases {
        let a = replicate_create(&c, &base, REPLICATE_MODEL, &body).await;
        assert_eq!(
            a.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            a.body
        );
        let entry = &a.body["invalid_fields"][0];
        assert_eq!(entry["field"], field, "{body}: {}", a.body);
        assert_eq!(entry["type"], kind, "{body}: {}", a.body);
        assert!(a.body["detail"].as_str().unwrap().contains(field));
        assert_eq!(a.body["status"], 422);
    }
    let no_input = answer(
        c.post(format!("{base}/v1/models/{REPLICATE_MODEL}/predictions"))
            .json(&json!({"webhook": "http://plain"})),
    )
    .await;
    assert_eq!(no_input.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = no_input.body["invalid_fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["webhook", "input"]);
    assert_eq!(emu.stats().jobs_created, 0);
    emu.shutdown().await;
}

#[tokio::test]
async fn replicate_auth_takes_bearer_or_token() {
    let emu = start(EmulatorConfig {
        api_key: Some("r8_secret".into()),
        ..fast()
    })
    .await;
    let (c, base) = (client(), emu.base_url());
    let url = format!("{base}/v1/predictions");
    let none = answer(c.get(&url)).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(none.body["status"], 401);
    assert_eq!(none.body["title"], "Unauthenticated");
    for auth in ["Bearer r8_secret", "Token r8_secret"] {
        let a = answer(c.get(&url).header("authorization", auth)).await;
        assert_eq!(a.status, StatusCode::OK, "{auth}");
    }
    let wrong = answer(c.get(&url).header("authorization", "Key r8_secret")).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    emu.shutdown().await;
}

#[tokio::test]
async fn replicate_lists_newest_first_in_cursor_pages() {
    let emu = start(fast()).await;
    let (c, base) = (client(), emu.base_url());
    // Moderated predictions fail early and render nothing: cheap to make 105 of.
    let mut ids = Vec::new();
    for i in 0..105 {
        let a = replicate_create(
            &c,
            &base,
            REPLICATE_MODEL,
            &input(&format!("forbidden {i}")),
        )
        .await;
        ids.push(a.body["id"].as_str().unwrap().to_owned());
    }
    ids.reverse();
    let ids_of = |a: &Answer| -> Vec<String> {
        a.body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let first = answer(c.get(format!("{base}/v1/predictions"))).await;
    assert_eq!(ids_of(&first), ids[..100]);
    assert_eq!(first.body["previous"], Value::Null);
    let next = first.body["next"].as_str().unwrap();
    assert!(
        next.starts_with(&format!("{base}/v1/predictions?cursor=")),
        "{next}"
    );
    let second = answer(c.get(next)).await;
    assert_eq!(ids_of(&second), ids[100..]);
    assert_eq!(second.body["next"], Value::Null);
    let back = answer(c.get(second.body["previous"].as_str().unwrap())).await;
    assert_eq!(ids_of(&back), ids[..100]);

    // ISO 8601 in a query: `:` and `+` escaped, as clients send it.
    let created_at = |id: &str| {
        let c = c.clone();
        let url = format!("{base}/v1/predictions/{id}");
        async move {
            let at = answer(c.get(url)).await.body["created_at"]
                .as_str()
                .unwrap()
                .to_owned();
            at.replace(':', "%3A").replace('+', "%2B")
        }
    };
    let newest = created_at(&ids[0]).await;
    let before = answer(c.get(format!("{base}/v1/predictions?created_before={newest}"))).await;
    assert!(!ids_of(&before).contains(&ids[0]));
    let after = answer(c.get(format!("{base}/v1/predictions?created_after={newest}"))).await;
    assert!(ids_of(&after).contains(&ids[0]));
    let oldest = created_at(ids.last().unwrap()).await;
    let all = answer(c.get(format!("{base}/v1/predictions?created_after={oldest}"))).await;
    let next = all.body["next"].as_str().unwrap();
    assert!(next.contains(&format!("created_after={oldest}")), "{next}");
    let rest = answer(c.get(next)).await;
    assert!(ids_of(&rest).contains(ids.last().unwrap()));
    let bad = answer(c.get(format!("{base}/v1/predictions?created_after=yesterday"))).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let bad_cursor = answer(c.get(format!("{base}/v1/predictions?cursor=zz"))).await;
    assert_eq!(bad_cursor.status, StatusCode::BAD_REQUEST);
    emu.shutdown().await;
}
