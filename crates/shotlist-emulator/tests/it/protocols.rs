//! Behaviour of `shotlist emulator` over real HTTP: lifecycles, pagination, delete,
//! expiry, auth, the running-job cap, the quota, validation, faults and stats.
//!
//! Tests named `content_*` download rendered files and assert real MP4/JPEG/WebP bytes:
//! they need the real encoder of `src/emulator/video.rs`.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::RANGE;
use serde_json::{Value, json};
use shotlist_emulator::EmulatorConfig;
use shotlist_models::limits::Api;

use crate::support::*;

#[tokio::test]
async fn azure_job_goes_from_queued_to_succeeded_with_generations() {
    let emu = start(fast()).await;
    let (c, base) = (client(), emu.base_url());
    let created = azure_create(&c, &base, &azure_job("a red kite", 854, 480, 5, 2)).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    assert!(created.headers.contains_key("apim-request-id"));
    let job = &created.body;
    assert_eq!(job["object"], "video.generation.job");
    assert_eq!(job["status"], "queued");
    let id = job["id"].as_str().unwrap();
    assert!(id.starts_with("task_01"), "{id}");
    assert_eq!(
        job["expires_at"].as_i64().unwrap() - job["created_at"].as_i64().unwrap(),
        24 * 3600
    );

    let seen = poll(&c, &format!("{base}{AZ}/jobs/{id}?{V}"), azure_finished).await;
    let statuses: Vec<&str> = seen.iter().map(|b| b["status"].as_str().unwrap()).collect();
    let order = [
        "queued",
        "preprocessing",
        "running",
        "processing",
        "succeeded",
    ];
    let ranks: Vec<usize> = statuses
        .iter()
        .map(|s| order.iter().position(|o| o == s).unwrap())
        .collect();
    assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "{statuses:?}");
    let done = seen.last().unwrap();
    assert_eq!(done["status"], "succeeded");
    assert!(done["finished_at"].as_i64().unwrap() >= done["created_at"].as_i64().unwrap() + 60);
    let generations = done["generations"].as_array().unwrap();
    assert_eq!(generations.len(), 2);
    let gen_id = generations[0]["id"].as_str().unwrap();
    assert!(gen_id.starts_with("gen_01"));

    let generation = answer(c.get(format!("{base}{AZ}/{gen_id}?{V}"))).await;
    assert_eq!(generation.status, StatusCode::OK);
    assert_eq!(generation.body["job_id"], id);
    assert_eq!(generation.body["object"], "video.generation");
    assert_eq!(generation.body["width"], 854);
    emu.shutdown().await;
}

#[tokio::test]
async fn azure_requires_api_version() {
    let emu = start(fast()).await;
    let (c, base) = (client(), emu.base_url());
    for query in ["", "?api-version=2024-10-21"] {
        let a = answer(c.get(format!("{base}{AZ}/jobs{query}"))).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST);
        assert_eq!(a.body["error"]["param"], "api-version");
        assert!(a.headers.contains_key("apim-request-id"));
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn openai_video_goes_from_queued_to_completed_with_rising_progress() {
    let emu = start(fast()).await;
    let (c, base) = (client(), emu.base_url());
    let created = openai_create(
        &c,
        &base,
        &json!({"prompt": "a lighthouse", "model": "sora-2", "size": "1280x720", "seconds": "8"}),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("video_"));
    assert_eq!(created.body["seconds"], "8");
    assert_eq!(created.body["size"], "1280x720");
    assert_eq!(created.body["completed_at"], Value::Null);

    let url = format!("{base}/v1/videos/{id}");
    let first = answer(c.get(&url)).await;
    let hint = first.header_number("openai-poll-after-ms");
    assert!((1..=10_000).contains(&hint), "{hint}");
    let seen = poll(&c, &url, openai_finished).await;
    let progress: Vec<u64> = seen
        .iter()
        .map(|b| b["progress"].as_u64().unwrap())
        .collect();
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    let done = seen.last().unwrap();
    assert_eq!(done["status"], "completed");
    assert_eq!(done["progress"], 100);
    assert!(done["completed_at"].is_i64());
    assert!(
        seen.iter().any(|b| b["status"] == "in_progress"),
        "{seen:?}"
    );

    // The same API under Azure's prefix.
    let azure_style = answer(c.get(format!("{base}/openai/v1/videos/{id}"))).await;
    assert_eq!(azure_style.status, StatusCode::OK);
    assert_eq!(azure_style.body["id"], id.as_str());
    emu.shutdown().await;
}

#[tokio::test]
async fn openai_remix_refers_to_its_source() {
    let emu = start(fast()).await;
    let (c, base) = (client(), emu.base_url());
    let id = openai_create(&c, &base, &json!({"prompt": "a field"}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let early = answer(
        c.post(format!("{base}/v1/videos/{id}/remix"))
            .json(&json!({"prompt": "a field at night"})),
    )
    .await;
    assert_eq!(
        early.status,
        StatusCode::BAD_REQUEST,
        "remix of an unfinished video: {}",
        early.body
    );
    poll(&c, &format!("{base}/v1/videos/{id}"), openai_finished).await;
    let remix = answer(
        c.post(format!("{base}/v1/videos/{id}/remix"))
            .json(&json!({"prompt": "a field at night"})),
    )
    .await;
    assert_eq!(remix.status, StatusCode::OK, "{}", remix.body);
    assert_eq!(remix.body["remixed_from_video_id"], id.as_str());
    assert_eq!(remix.body["prompt"], "a field at night");
    assert_eq!(
        remix.body["size"], "720x1280",
        "the default size, kept from the source"
    );
    emu.shutdown().await;
}

fn png_header(width: u32, height: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    png.extend_from_slice(&width.to_be_bytes());
    png.extend_from_slice(&height.to_be_bytes());
    png.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
    png
}

#[tokio::test]
async fn openai_multipart_create_checks_the_input_reference() {
    let emu = start(fast()).await;
    let (c, base) = (client(), emu.base_url());
    let form = |image: Vec<u8>, as_file: bool| {
        let form = reqwest::multipart::Form::new()
            .text("prompt", "a boat")
            .text("model", "sora-2")
            .text("size", "1280x720")
            .text("seconds", "4");
        if as_file {
            form.part(
                "input_reference",
                reqwest::multipart::Part::bytes(image)
                    .file_name("ref.png")
                    .mime_str("image/png")
                    .unwrap(),
            )
        } else {
            form.text("input_reference", "not a file")
        }
    };
    let ok = answer(
        c.post(format!("{base}/v1/videos"))
            .multipart(form(png_header(1280, 720), true)),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(ok.body["size"], "1280x720");
    let wrong_size = answer(
        c.post(format!("{base}/v1/videos"))
            .multipart(form(png_header(720, 1280), true)),
    )
    .await;
    assert_eq!(wrong_size.status, StatusCode::BAD_REQUEST);
    assert_eq!(wrong_size.body["error"]["param"], "input_reference");
    let text = answer(
        c.post(format!("{base}/v1/videos"))
            .multipart(form(Vec::new(), false)),
    )
    .await;
    assert_eq!(text.status, StatusCode::BAD_REQUEST);
    assert_eq!(text.body["error"]["param"], "input_reference");
    emu.shutdown().await;
}

#[tokio::test]
async fn azure_list_pages_with_after_before_and_statuses() {
    let emu = start(fast()).await;
    let (c, base) = (client(), emu.base_url());
    let mut ids = Vec::new();
    for i in 0..5 {
        let a = azure_create(&c, &base, &azure_job(&format!("shot {i}"), 480, 480, 1, 1)).await;
        ids.push(a.body["id"].as_str().unwrap().to_owned());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    let page = |query: String| {
        let c = c.clone();
        let url = format!("{base}{AZ}/jobs?{V}&{query}");
        async move { answer(c.get(url)).await }
    };
    let p1 = page("limit=2".into()).await;
    assert_eq!(p1.status, StatusCode::OK);
    let data_ids = |a: &Answer| {
        a.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(data_ids(&p1), newest_first[..2]);
    assert_eq!(p1.body["has_more"], true);
    assert_eq!(p1.body["first_id"], newest_first[0].as_str());
    assert_eq!(p1.body["last_id"], newest_first[1].as_str());
    let p2 = page(format!("limit=2&after={}", newest_first[1])).await;
    assert_eq!(data_ids(&p2), newest_first[2..4]);
    let p3 = page(format!("limit=2&after={}", newest_first[3])).await;
    assert_eq!(data_ids(&p3), newest_first[4..]);
    assert_eq!(p3.body["has_more"], false);
    let back = page(format!("limit=2&before={}", newest_first[4])).await;
    assert_eq!(data_ids(&back), newest_first[2..4]);
    assert_eq!(back.body["has_more"], true);

    for id in &ids {
        poll(&c, &format!("{base}{AZ}/jobs/{id}?{V}"), azure_finished).await;
    }
    assert_eq!(
        data_ids(&page("statuses=succeeded,failed&limit=10".into()).await).len(),
        5
    );
    assert!(data_ids(&page("statuses=queued,running".into()).await).is_empty());
    assert_eq!(
        page("statuses=done".into()).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(page("limit=0".into()).await.status, StatusCode::BAD_REQUEST);
    emu.shutdown().await;
}

#[tokio::test]
async fn openai_list_pages_in_both_orders() {
    let emu = start(fast()).await;
    let (c, base) = (client(), emu.base_url());
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            openai_create(&c, &base, &json!({"prompt": format!("clip {i}")}))
                .await
                .body["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let list = |q: &str| answer(c.get(format!("{base}/v1/videos?{q}")));
    let ids_of = |a: &Answer| {
        a.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let asc = list("order=asc&limit=2").await;
    assert_eq!(ids_of(&asc), ids[..2]);
    assert_eq!(asc.body["has_more"], true);
    let rest = list(&format!("order=asc&after={}", ids[1])).await;
    assert_eq!(ids_of(&rest), ids[2..]);
    assert_eq!(rest.body["has_more"], false);
    let desc = list("").await;
    assert_eq!(ids_of(&desc), ids.iter().rev().cloned().collect::<Vec<_>>());
    assert_eq!(list("order=sideways").await.status, StatusCode::BAD_REQUEST);
    emu.shutdown().await;
}

#[tokio::test]
async fn delete_removes_jobs_in_both_apis() {
    let emu = start(fast()).await;
    let (c, base) = (client(), emu.base_url());
    let id = azure_create(&c, &base, &azure_job("to delete", 480, 480, 2, 1))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = poll(&c, &format!("{base}{AZ}/jobs/{id}?{V}"), azure_finished).await;
    let gen_id = done.last().unwrap()["generations"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deleted = answer(c.delete(format!("{base}{AZ}/jobs/{id}?{V}"))).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(
        answer(c.get(format!("{base}{AZ}/jobs/{id}?{V}")))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        answer(c.get(format!("{base}{AZ}/{gen_id}?{V}")))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        answer(c.delete(format!("{base}{AZ}/jobs/{id}?{V}")))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let vid = openai_create(&c, &base, &json!({"prompt": "to delete"}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let gone = answer(c.delete(format!("{base}/v1/videos/{vid}"))).await;
    assert_eq!(gone.status, StatusCode::OK);
    assert_eq!(
        gone.body,
        json!({"id": vid, "object": "video.deleted", "deleted": true})
    );
    let missing = answer(c.get(format!("{base}/v1/videos/{vid}"))).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(
        missing.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&vid)
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn jobs_and_content_are_gone_after_retention() {
    // 1200×: jobs take ~50 ms, retention (20 emulated minutes) ends after 1 s.
    let emu = start(EmulatorConfig {
        time_scale: 1200.0,
        retention: Duration::from_secs(1200),
        ..fast()
    })
    .await;
    let (c, base) = (client(), emu.base_url());
    let job = azure_create(&c, &base, &azure_job("ephemeral", 480, 480, 1, 1))
        .await
        .body;
    assert_eq!(
        job["expires_at"].as_i64().unwrap() - job["created_at"].as_i64().unwrap(),
        1200
    );
    let id = job["id"].as_str().unwrap().to_owned();
    let done = poll(&c, &format!("{base}{AZ}/jobs/{id}?{V}"), azure_finished).await;
    let gen_id = done.last().unwrap()["generations"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let vid = openai_create(&c, &base, &json!({"prompt": "ephemeral"}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::sleep(Duration::from_millis(1300)).await;
    for url in [
        format!("{base}{AZ}/jobs/{id}?{V}"),
        format!("{base}{AZ}/{gen_id}?{V}"),
        format!("{base}{AZ}/{gen_id}/content/video?{V}"),
        format!("{base}{AZ}/{gen_id}/content/thumbnail?{V}"),
        format!("{base}/v1/videos/{vid}"),
        format!("{base}/v1/videos/{vid}/content"),
    ] {
        assert_eq!(
            answer(c.get(&url)).await.status,
            StatusCode::NOT_FOUND,
            "{url}"
        );
    }
    let list = answer(c.get(format!("{base}{AZ}/jobs?{V}"))).await;
    assert_eq!(list.body["data"], json!([]));
    emu.shutdown().await;
}

#[tokio::test]
async fn api_key_is_required_when_set() {
    let emu = start(EmulatorConfig {
        api_key: Some("s3cret".into()),
        ..fast()
    })
    .await;
    let (c, base) = (client(), emu.base_url());
    let url = format!("{base}{AZ}/jobs?{V}");
    let none = answer(c.get(&url)).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert!(none.body["error"]["message"].is_string());
    assert!(none.headers.contains_key("apim-request-id"));
    assert_eq!(
        answer(c.get(&url).header("api-key", "wrong")).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        answer(c.get(&url).header("api-key", "s3cret")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        answer(c.get(&url).bearer_auth("s3cret")).await.status,
        StatusCode::OK
    );
    let openai = answer(c.get(format!("{base}/v1/videos")).bearer_auth("nope")).await;
    assert_eq!(openai.status, StatusCode::UNAUTHORIZED);
    assert_eq!(openai.body["error"]["code"], "invalid_api_key");
    assert!(
        !openai.body.to_string().contains("nope"),
        "the key is echoed"
    );
    // The emulator's own routes need no key.
    assert_eq!(
        answer(c.get(format!("{base}/_emulator/stats")))
            .await
            .status,
        StatusCode::OK
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn third_concurrent_job_gets_429() {
    // Real time: jobs run for minutes, so both stay running.
    let emu = start(EmulatorConfig {
        time_scale: 1.0,
        max_running: Api::AzureJobs.limits().max_running_jobs,
        ..fast()
    })
    .await;
    let (c, base) = (client(), emu.base_url());
    for i in 0..Api::AzureJobs.limits().max_running_jobs {
        let a = azure_create(&c, &base, &azure_job(&format!("job {i}"), 480, 480, 5, 1)).await;
        assert_eq!(a.status, StatusCode::OK);
    }
    let third = azure_create(&c, &base, &azure_job("one too many", 480, 480, 5, 1)).await;
    assert_eq!(
        third.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        third.body
    );
    assert_eq!(third.body["error"]["code"], "too_many_running_jobs");
    assert!(
        third.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("running")
    );
    let retry = third.header_number("retry-after");
    assert!((1..=300).contains(&retry), "{retry}");
    // Both APIs share the cap.
    let openai = openai_create(&c, &base, &json!({"prompt": "also too many"})).await;
    assert_eq!(openai.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(openai.body["error"]["type"], "requests");
    let stats = emu.stats();
    assert_eq!(stats.jobs_created, 2);
    assert_eq!(stats.jobs_running_max, 2);
    assert_eq!(stats.jobs_running, 2);
    assert_eq!(stats.responses_429, 2);
    emu.shutdown().await;
}

#[tokio::test]
async fn quota_refuses_past_rpm_with_retry_after() {
    let emu = start(EmulatorConfig {
        time_scale: 1.0,
        rpm: 3,
        ..fast()
    })
    .await;
    let (c, base) = (client(), emu.base_url());
    let url = format!("{base}{AZ}/jobs?{V}");
    for _ in 0..3 {
        assert_eq!(answer(c.get(&url)).await.status, StatusCode::OK);
    }
    // Stats reads do not count.
    assert_eq!(
        answer(c.get(format!("{base}/_emulator/stats")))
            .await
            .status,
        StatusCode::OK
    );
    let refused = answer(c.get(&url)).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    let secs = refused.header_number("retry-after");
    let ms = refused.header_number("retry-after-ms");
    assert!((55..=60).contains(&secs), "{secs}");
    assert!(ms > 55_000 && ms <= 60_000, "{ms}");
    assert_eq!(refused.body["error"]["code"], "429");
    let openai = answer(c.get(format!("{base}/v1/videos"))).await;
    assert_eq!(openai.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(openai.body["error"]["code"], "rate_limit_exceeded");
    let stats = emu.stats();
    assert_eq!(stats.requests_total, 5);
    assert_eq!(stats.requests_max_per_minute, 5);
    assert_eq!(stats.responses_429, 2);
    emu.shutdown().await;
}

#[tokio::test]
async fn quota_window_follows_the_time_scale() {
    // 600×: an emulated minute is 100 ms.
    let emu = start(EmulatorConfig {
        time_scale: 600.0,
        rpm: 2,
        ..fast()
    })
    .await;
    let (c, base) = (client(), emu.base_url());
    let url = format!("{base}/v1/videos");
    assert_eq!(answer(c.get(&url)).await.status, StatusCode::OK);
    assert_eq!(answer(c.get(&url)).await.status, StatusCode::OK);
    let refused = answer(c.get(&url)).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    let ms = refused.header_number("retry-after-ms");
    assert!(ms <= 100, "hints are real time: {ms}");
    tokio::time::sleep(Duration::from_millis(ms + 20)).await;
    assert_eq!(answer(c.get(&url)).await.status, StatusCode::OK);
    emu.shutdown().await;
}

#[tokio::test]
async fn azure_validation_errors_name_the_parameter() {
    let emu = start(fast()).await;
    let (c, base) = (client(), emu.base_url());
    let big_variants = Api::AzureJobs
        .limits()
        .size_rule(shotlist_models::limits::Size::new(1280, 720))
        .unwrap()
        .max_variants
        + 1;
    let too_long = "x".repeat(Api::AzureJobs.limits().prompt_max_chars + 1);
    let cases = [
        (azure_job("p", 1000, 1000, 5, 1), "width"),
        (azure_job("p", 480, 480, 0, 1), "n_seconds"),
        (azure_job("p", 480, 480, 21, 1), "n_seconds"),
        (azure_job("p", 1280, 720, 5, big_variants), "n_variants"),
        (azure_job("p", 480, 480, 5, 0), "n_variants"),
        (azure_job(&too_long, 480, 480, 5, 1), "prompt"),
        (
            json!({"width": 480, "height": 480, "model": "sora"}),
            "prompt",
        ),
        (json!({"prompt": "p", "width": 480, "height": 480}), "model"),
        (
            json!({"prompt": "p", "width": "480", "height": 480, "model": "sora"}),
            "width",
        ),
    ];
    for (body, param) in cases {
        let a = azure_create(&c, &base, &body).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}");
        let e = &a.body["error"];
        assert_eq!(e["param"], param, "{body}: {e}");
        assert!(
            e["code"].is_string() && e["message"].is_string() && e["type"].is_string(),
            "{e}"
        );
    }
    assert_eq!(emu.stats().jobs_created, 0);
    emu.shutdown().await;
}

#[tokio::test]
async fn openai_validation_errors_name_the_parameter() {
    let emu = start(fast()).await;
    let (c, base) = (client(), emu.base_url());
    let too_long = "x".repeat(Api::OpenaiVideos.limits().prompt_max_chars + 1);
    let cases = [
        (json!({"prompt": "p", "size": "1920x1080"}), "size"),
        (
            json!({"prompt": "p", "size": "1792x1024", "model": "sora-2"}),
            "size",
        ),
        (json!({"prompt": "p", "seconds": "5"}), "seconds"),
        (json!({"prompt": "p", "seconds": 4}), "seconds"),
        (json!({"prompt": too_long}), "prompt"),
        (json!({"prompt": ""}), "prompt"),
        (json!({"seconds": "4"}), "prompt"),
    ];
    for (body, param) in cases {
        let a = openai_create(&c, &base, &body).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}");
        let e = &a.body["error"];
        assert_eq!(e["param"], param, "{body}: {e}");
        assert!(e.as_object().unwrap().contains_key("code"), "{e}");
        assert!(e["message"].is_string() && e["type"].is_string(), "{e}");
    }
    let pro = openai_create(
        &c,
        &base,
        &json!({"prompt": "p", "size": "1792x1024", "model": "sora-2-pro"}),
    )
    .await;
    assert_eq!(pro.status, StatusCode::OK, "{}", pro.body);
    emu.shutdown().await;
}

#[tokio::test]
async fn moderation_word_fails_the_job_in_both_apis() {
    let emu = start(fast()).await;
    let (c, base) = (client(), emu.base_url());
    let id = azure_create(&c, &base, &azure_job("a FORBIDDEN scene", 480, 480, 5, 1))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = poll(&c, &format!("{base}{AZ}/jobs/{id}?{V}"), azure_finished).await;
    let last = done.last().unwrap();
    assert_eq!(last["status"], "failed");
    assert_eq!(last["failure_reason"], "input_moderation");
    assert_eq!(last["generations"], json!([]));
    let vid = openai_create(&c, &base, &json!({"prompt": "forbidden"}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = poll(&c, &format!("{base}/v1/videos/{vid}"), openai_finished).await;
    let last = done.last().unwrap();
    assert_eq!(last["status"], "failed");
    assert_eq!(last["error"]["code"], "moderation_blocked");
    let content = answer(c.get(format!("{base}/v1/videos/{vid}/content"))).await;
    assert_eq!(content.status, StatusCode::BAD_REQUEST);
    emu.shutdown().await;
}

#[tokio::test]
async fn fail_fault_fails_jobs_with_internal_error() {
    let emu = start(EmulatorConfig {
        faults: "fail=1".parse().unwrap(),
        ..fast()
    })
    .await;
    let (c, base) = (client(), emu.base_url());
    let id = azure_create(&c, &base, &azure_job("doomed", 480, 480, 5, 1))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = poll(&c, &format!("{base}{AZ}/jobs/{id}?{V}"), azure_finished).await;
    assert_eq!(done.last().unwrap()["failure_reason"], "internal_error");
    assert_eq!(emu.stats().faults_injected.get("fail"), Some(&1));
    emu.shutdown().await;
}

async fn statuses_with(seed: u64, n: usize) -> Vec<u16> {
    let emu = start(EmulatorConfig {
        seed,
        faults: "500=0.3,503=0.2,429=0.1".parse().unwrap(),
        ..fast()
    })
    .await;
    let (c, base) = (client(), emu.base_url());
    let mut statuses = Vec::new();
    for _ in 0..n {
        statuses.push(
            answer(c.get(format!("{base}{AZ}/jobs?{V}")))
                .await
                .status
                .as_u16(),
        );
    }
    // Faults never touch the emulator's own routes.
    for _ in 0..20 {
        assert_eq!(
            answer(c.get(format!("{base}/_emulator/stats")))
                .await
                .status,
            StatusCode::OK
        );
    }
    let stats = emu.stats();
    assert_eq!(stats.requests_total, n as u64);
    emu.shutdown().await;
    statuses
}

#[tokio::test]
async fn faults_are_deterministic_given_a_seed() {
    let a = statuses_with(42, 60).await;
    let b = statuses_with(42, 60).await;
    let other = statuses_with(43, 60).await;
    assert_eq!(a, b);
    assert_ne!(a, other);
    for status in [200, 500, 503, 429] {
        assert!(a.contains(&status), "{status} never happened in {a:?}");
    }
}

#[tokio::test]
async fn injected_errors_carry_the_api_shape_and_retry_hints() {
    let emu = start(EmulatorConfig {
        faults: "429=1".parse().unwrap(),
        ..fast()
    })
    .await;
    let (c, base) = (client(), emu.base_url());
    let a = answer(c.get(format!("{base}/v1/videos"))).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(a.headers.contains_key("retry-after") && a.headers.contains_key("retry-after-ms"));
    assert!(a.body["error"].as_object().unwrap().contains_key("param"));
    emu.shutdown().await;
}

#[tokio::test]
async fn drop_fault_closes_the_connection_mid_body() {
    let emu = start(EmulatorConfig {
        faults: "drop=1".parse().unwrap(),
        ..fast()
    })
    .await;
    let (c, base) = (client(), emu.base_url());
    let response = c
        .post(format!("{base}{AZ}/jobs?{V}"))
        .json(&azure_job("dropped", 480, 480, 5, 1))
        .send()
        .await;
    let body = match response {
        Ok(r) => r.bytes().await,
        Err(e) => Err(e),
    };
    assert!(body.is_err(), "the body arrived whole: {body:?}");
    // The job was created all the same: the answer was lost, not the request.
    assert_eq!(emu.stats().jobs_created, 1);
    assert_eq!(emu.stats().faults_injected.get("drop"), Some(&1));
    emu.shutdown().await;
}

#[tokio::test]
async fn slow_fault_delays_the_answer() {
    let emu = start(EmulatorConfig {
        faults: "slow=1,slow-ms=300".parse().unwrap(),
        ..fast()
    })
    .await;
    let (c, base) = (client(), emu.base_url());
    let started = std::time::Instant::now();
    assert_eq!(
        answer(c.get(format!("{base}/v1/videos"))).await.status,
        StatusCode::OK
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    emu.shutdown().await;
}

#[tokio::test]
async fn stats_count_what_happened() {
    let emu = start(EmulatorConfig {
        max_running: 2,
        time_scale: 1.0,
        ..fast()
    })
    .await;
    let (c, base) = (client(), emu.base_url());
    azure_create(&c, &base, &azure_job("same prompt", 480, 480, 5, 1)).await;
    openai_create(&c, &base, &json!({"prompt": "same prompt"})).await;
    openai_create(&c, &base, &json!({"prompt": "refused"})).await;
    answer(c.get(format!("{base}/nowhere"))).await;
    let over_http = answer(c.get(format!("{base}/_emulator/stats"))).await.body;
    let stats = emu.stats();
    assert_eq!(serde_json::to_value(&stats).unwrap(), over_http);
    assert_eq!(stats.jobs_created, 2);
    assert_eq!(stats.jobs_running_max, 2);
    assert_eq!(stats.requests_total, 4);
    assert_eq!(stats.requests_max_per_minute, 4);
    assert_eq!(stats.responses_429, 1);
    assert_eq!(stats.responses_by_status.get("200"), Some(&2));
    assert_eq!(stats.responses_by_status.get("404"), Some(&1));
    assert_eq!(
        stats
            .creates_by_prompt_hash
            .values()
            .copied()
            .collect::<Vec<_>>(),
        vec![2]
    );
    for key in [
        "jobs_created",
        "jobs_running_max",
        "requests_total",
        "requests_max_per_minute",
        "responses_429",
        "bytes_served",
    ] {
        assert!(over_http.get(key).is_some(), "{key}");
    }
    emu.shutdown().await;
}

// ---- content: these need the real encoder of `src/emulator/video.rs` ----

async fn azure_succeeded_generation(
    c: &reqwest::Client,
    base: &str,
    width: u32,
    height: u32,
) -> String {
    let id = azure_create(c, base, &azure_job("a slate", width, height, 2, 1))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = poll(c, &format!("{base}{AZ}/jobs/{id}?{V}"), azure_finished).await;
    done.last().unwrap()["generations"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn content_azure_video_and_thumbnail_are_real_files() {
    let emu = start(fast()).await;
    let (c, base) = (client(), emu.base_url());
    let gen_id = azure_succeeded_generation(&c, &base, 480, 480).await;
    let url = format!("{base}{AZ}/{gen_id}/content/video?{V}&quality=high");
    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "video/mp4");
    assert_eq!(h["accept-ranges"], "bytes");
    assert!(h.contains_key("last-modified") && h.contains_key("apim-request-id"));
    let len: usize = h["content-length"].to_str().unwrap().parse().unwrap();
    let bytes = r.bytes().await.unwrap();
    assert_eq!(bytes.len(), len);
    assert_mp4(&bytes);

    let head = c.head(&url).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(
        head.headers()["content-length"].to_str().unwrap(),
        len.to_string()
    );

    let thumb = c
        .get(format!("{base}{AZ}/{gen_id}/content/thumbnail?{V}"))
        .send()
        .await
        .unwrap();
    assert_eq!(thumb.status(), StatusCode::OK);
    assert_eq!(thumb.headers()["content-type"], "image/jpg");
    let jpeg = thumb.bytes().await.unwrap();
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
    let stats = emu.stats();
    assert_eq!(stats.bytes_served, (bytes.len() + jpeg.len()) as u64);
    assert_eq!(stats.content_downloads, 2);
    emu.shutdown().await;
}

#[tokio::test]
async fn content_range_requests_resume_a_download() {
    let emu = start(fast()).await;
    let (c, base) = (client(), emu.base_url());
    let gen_id = azure_succeeded_generation(&c, &base, 480, 480).await;
    let url = format!("{base}{AZ}/{gen_id}/content/video?{V}");
    let whole = c.get(&url).send().await.unwrap().bytes().await.unwrap();
    assert_mp4(&whole);
    let from = whole.len() / 3;
    let part = c
        .get(&url)
        .header(RANGE, format!("bytes={from}-"))
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        part.headers()["content-range"].to_str().unwrap(),
        format!("bytes {from}-{}/{}", whole.len() - 1, whole.len())
    );
    let rest = part.bytes().await.unwrap();
    assert_eq!(&rest[..], &whole[from..]);
    let past = c
        .get(&url)
        .header(RANGE, format!("bytes={}-", whole.len()))
        .send()
        .await
        .unwrap();
    assert_eq!(past.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    emu.shutdown().await;
}

#[tokio::test]
async fn content_openai_variants_are_real_files() {
    let emu = start(fast()).await;
    let (c, base) = (client(), emu.base_url());
    let vid = openai_create(
        &c,
        &base,
        &json!({"prompt": "a slate", "size": "720x1280", "seconds": "4"}),
    )
    .await
    .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let early = answer(c.get(format!("{base}/v1/videos/{vid}/content"))).await;
    assert_eq!(
        early.status,
        StatusCode::NOT_FOUND,
        "content before completion: {}",
        early.body
    );
    poll(&c, &format!("{base}/v1/videos/{vid}"), openai_finished).await;
    let video = c
        .get(format!("{base}/v1/videos/{vid}/content?variant=video"))
        .send()
        .await
        .unwrap();
    assert_eq!(video.headers()["content-type"], "video/mp4");
    assert_mp4(&video.bytes().await.unwrap());
    for variant in ["thumbnail", "spritesheet"] {
        let r = c
            .get(format!("{base}/v1/videos/{vid}/content?variant={variant}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-type"], "image/webp");
        assert_webp(&r.bytes().await.unwrap());
    }
    let bad = answer(c.get(format!("{base}/v1/videos/{vid}/content?variant=gif"))).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    emu.shutdown().await;
}

#[tokio::test]
async fn content_truncate_fault_cuts_downloads_short() {
    let emu = start(EmulatorConfig {
        faults: "truncate=1".parse().unwrap(),
        ..fast()
    })
    .await;
    let (c, base) = (client(), emu.base_url());
    let gen_id = azure_succeeded_generation(&c, &base, 480, 480).await;
    let r = c
        .get(format!("{base}{AZ}/{gen_id}/content/video?{V}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.bytes().await.is_err(), "a truncated download must fail");
    assert_eq!(emu.stats().faults_injected.get("truncate"), Some(&1));
    emu.shutdown().await;
}
