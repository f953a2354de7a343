//! fal's queue API over real HTTP: lifecycle (202 then 200), queue positions with two
//! slots, failures, cancel, result expiry, per-model 422s, auth, faults, and the media
//! host (no credential needed, credentials counted).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use shotlist_emulator::EmulatorConfig;
use shotlist_models::limits::{Api, Size};

use crate::support::*;

fn input(prompt: &str) -> Value {
    let (size, seconds) = smallest(Api::Fal, FAL_MODEL);
    model_input(Api::Fal, FAL_MODEL, prompt, size, seconds)
}

#[tokio::test]
async fn fal_request_is_queued_in_progress_then_completed_with_a_video_on_the_media_host() {
    let emu = start(fast()).await;
    let (c, base) = (client(), emu.base_url());
    let size = Size::new(1280, 720);
    let body = model_input(Api::Fal, FAL_MODEL, "a lighthouse", size, 4);
    let submitted = fal_submit(&c, &base, FAL_MODEL, &body).await;
    assert_eq!(submitted.status, StatusCode::OK, "{}", submitted.body);
    let s = &submitted.body;
    assert_eq!(s["status"], "IN_QUEUE");
    assert_eq!(s["queue_position"], 0);
    let id = s["request_id"].as_str().unwrap();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    assert_eq!(submitted.headers["x-fal-request-id"], id);
    let response_url = format!("{base}/fal-ai/veo3.1/requests/{id}");
    assert_eq!(s["response_url"], response_url.as_str());
    assert_eq!(s["status_url"], format!("{response_url}/status").as_str());
    assert_eq!(s["cancel_url"], format!("{response_url}/cancel").as_str());

    let early = answer(c.get(&response_url)).await;
    assert_eq!(early.status, StatusCode::BAD_REQUEST, "{}", early.body);
    assert!(
        early.body["detail"]
            .as_str()
            .unwrap()
            .contains("in progress")
    );

    let seen = fal_poll(&c, s["status_url"].as_str().unwrap()).await;
    for (code, body) in &seen {
        let expected = if body["status"] == "COMPLETED" {
            StatusCode::OK
        } else {
            StatusCode::ACCEPTED
        };
        assert_eq!(*code, expected, "{body}");
        assert!(body.as_object().unwrap().contains_key("logs"), "{body}");
    }
    assert!(
        seen.iter().any(|(_, b)| b["status"] == "IN_PROGRESS"),
        "{seen:?}"
    );
    let done = &seen.last().unwrap().1;
    assert!(
        done["metrics"]["inference_time"].as_f64().unwrap() >= 60.0,
        "{done}"
    );
    assert!(done.get("error").is_none());

    let with_logs = answer(c.get(format!("{response_url}/status?logs=1"))).await;
    let logs = with_logs.body["logs"].as_array().unwrap();
    assert!(
        logs.len() >= 2 && logs[0]["message"].is_string(),
        "{logs:?}"
    );

    let result = answer(c.get(&response_url)).await;
    assert_eq!(result.status, StatusCode::OK, "{}", result.body);
    let video = &result.body["video"];
    assert_eq!(video["content_type"], "video/mp4");
    assert_eq!(video["file_name"], "output.mp4");
    assert!(result.body["seed"].is_u64());
    let url = video["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/files/", emu.media_base_url())),
        "{url}"
    );
    assert!(!url.contains(id), "the media URL does not name the request");
    assert_ne!(emu.media_addr().ip(), emu.addr().ip(), "another host");

    let before = emu.stats();
    let bytes = c.get(url).send().await.unwrap().bytes().await.unwrap();
    assert_mp4(&bytes);
    assert_eq!(video["file_size"].as_u64(), Some(bytes.len() as u64));
    let head = c.head(url).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    let leaked = c
        .get(url)
        .header("authorization", "Key should-not-be-sent")
        .send()
        .await
        .unwrap();
    assert_eq!(
        leaked.status(),
        StatusCode::OK,
        "the media host asks for nothing"
    );
    let stats = emu.stats();
    assert_eq!(stats.media_requests - before.media_requests, 3);
    assert_eq!(
        stats.media_requests_with_credential - before.media_requests_with_credential,
        1
    );
    assert_eq!(
        stats.requests_total, before.requests_total,
        "media requests are not API requests"
    );
    let over_http = answer(c.get(format!("{base}/_emulator/stats"))).await.body;
    assert_eq!(over_http["media_requests"], stats.media_requests);
    assert_eq!(
        over_http["media_requests_with_credential"],
        stats.media_requests_with_credential
    );
    let guessed = c
        .get(format!(
            "{}/files/{}/output.mp4",
            emu.media_base_url(),
            "0".repeat(32)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(guessed.status(), StatusCode::NOT_FOUND);
    emu.shutdown().await;
}

#[tokio::test]
async fn fal_two_slots_four_submits_queue_in_order_with_positions() {
    // 200x: a job takes 0.3-1.5 s, long enough to see the queue.
    let emu = start(EmulatorConfig {
        max_running: 2,
        time_scale: 200.0,
        ..fast()
    })
    .await;
    let (c, base) = (client(), emu.base_url());
    let mut status_urls = Vec::new();
    let mut positions = Vec::new();
    for i in 0..4 {
        let a = fal_submit(&c, &base, FAL_MODEL, &input(&format!("shot {i}"))).await;
        assert_eq!(a.status, StatusCode::OK, "never refused: {}", a.body);
        positions.push(a.body["queue_position"].as_u64().unwrap());
        status_urls.push(a.body["status_url"].as_str().unwrap().to_owned());
    }
    assert_eq!(positions, [0, 0, 0, 1]);
    let now: Vec<Value> = futures::future::join_all(status_urls.iter().map(|u| answer(c.get(u))))
        .await
        .into_iter()
        .map(|a| {
            assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
            a.body
        })
        .collect();
    assert_eq!(now[0]["status"], "IN_PROGRESS");
    assert_eq!(now[1]["status"], "IN_PROGRESS");
    assert_eq!(now[2]["status"], "IN_QUEUE");
    assert_eq!(now[2]["queue_position"], 0);
    assert_eq!(now[3]["status"], "IN_QUEUE");
    assert_eq!(now[3]["queue_position"], 1);
    // The fourth's position falls as the queue ahead of it empties; every one completes.
    let fourth = fal_poll(&c, &status_urls[3]).await;
    let positions: Vec<u64> = fourth
        .iter()
        .filter_map(|(_, b)| b["queue_position"].as_u64())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] >= w[1]), "{positions:?}");
    assert!(fourth.iter().any(|(_, b)| b["status"] == "IN_PROGRESS"));
    for url in &status_urls[..3] {
        assert_eq!(answer(c.get(url)).await.body["status"], "COMPLETED");
    }
    assert_eq!(emu.stats().jobs_running_max, 2);
    assert_eq!(emu.stats().responses_429, 0);
    emu.shutdown().await;
}

#[tokio::test]
async fn fal_failures_complete_with_an_error_and_the_result_is_the_models_error() {
    let emu = start(fast()).await;
    let (c, base) = (client(), emu.base_url());
    let moderated = fal_submit(&c, &base, FAL_MODEL, &input("a Forbidden thing"))
        .await
        .body;
    let done = fal_poll(&c, moderated["status_url"].as_str().unwrap()).await;
    let (code, last) = done.last().unwrap();
    assert_eq!(*code, StatusCode::OK);
    assert_eq!(last["error_type"], "content_policy_violation");
    assert!(last["error"].is_string());
    let result = answer(c.get(moderated["response_url"].as_str().unwrap())).await;
    assert_eq!(result.status, StatusCode::UNPROCESSABLE_ENTITY);
    let entry = &result.body["detail"][0];
    assert_eq!(entry["type"], "content_policy_violation");
    assert_eq!(entry["loc"], json!(["body", "prompt"]));
    emu.shutdown().await;

    let emu = start(EmulatorConfig {
        faults: "fail=1".parse().unwrap(),
        ..fast()
    })
    .await;
    let (c, base) = (client(), emu.base_url());
    let doomed = fal_submit(&c, &base, FAL_MODEL, &input("doomed"))
        .await
        .body;
    let done = fal_poll(&c, doomed["status_url"].as_str().unwrap()).await;
    assert!(
        done.last().unwrap().1["error_type"]
            .as_str()
            .unwrap()
            .starts_with("runner_")
    );
    let result = answer(c.get(doomed["response_url"].as_str().unwrap())).await;
    assert_eq!(result.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(result.body["error_type"], "runner_server_error");
    assert_eq!(result.headers["x-fal-error-type"], "runner_server_error");
    assert!(result.body["detail"].is_string());
    emu.shutdown().await;
}

#[tokio::test]
async fn fal_cancel_ends_a_running_or_queued_request_and_refuses_a_finished_one() {
    // 20x: a job takes 3 s or more; a second one waits behind it.
    let emu = start(EmulatorConfig {
        max_running: 1,
        time_scale: 20.0,
        ..fast()
    })
    .await;
    let (c, base) = (client(), emu.base_url());
    let running = fal_submit(&c, &base, FAL_MODEL, &input("to cancel"))
        .await
        .body;
    let queued = fal_submit(&c, &base, FAL_MODEL, &input("waiting"))
        .await
        .body;
    assert_eq!(
        answer(c.get(queued["status_url"].as_str().unwrap()))
            .await
            .body["status"],
        "IN_QUEUE"
    );
    let cancel = answer(c.put(running["cancel_url"].as_str().unwrap())).await;
    assert_eq!(cancel.status, StatusCode::ACCEPTED, "{}", cancel.body);
    assert_eq!(cancel.body["status"], "CANCELLATION_REQUESTED");
    let status = answer(c.get(running["status_url"].as_str().unwrap())).await;
    assert_eq!(status.status, StatusCode::OK);
    assert_eq!(status.body["status"], "COMPLETED");
    assert!(status.body["error"].as_str().unwrap().contains("cancel"));
    let result = answer(c.get(running["response_url"].as_str().unwrap())).await;
    assert!(result.status.is_client_error(), "{}", result.status);
    assert!(result.body["detail"].as_str().unwrap().contains("cancel"));
    // The slot went to the request waiting behind it.
    let moved_up = answer(c.get(queued["status_url"].as_str().unwrap())).await;
    assert_eq!(moved_up.body["status"], "IN_PROGRESS", "{}", moved_up.body);
    let again = answer(c.put(running["cancel_url"].as_str().unwrap())).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(again.body["status"], "ALREADY_COMPLETED");
    let unknown = answer(c.put(format!("{base}/fal-ai/veo3.1/requests/nope/cancel"))).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.body["status"], "NOT_FOUND");
    // Status paths use the app's first two segments only.
    let wrong_app = answer(c.get(format!(
        "{base}/fal-ai/other/requests/{}/status",
        queued["request_id"].as_str().unwrap()
    )))
    .await;
    assert_eq!(wrong_app.status, StatusCode::NOT_FOUND);
    emu.shutdown().await;
}

#[tokio::test]
async fn fal_result_expires_after_retention_while_its_media_stays_longer() {
    // 1200x: jobs take ~50-250 ms; the result is kept 1200 emulated s (1 s), the media
    // 4800 (4 s), counted from completion.
    let emu = start(EmulatorConfig {
        time_scale: 1200.0,
        retention: Duration::from_secs(1200),
        media_retention: Duration::from_secs(4800),
        ..fast()
    })
    .await;
    let (c, base) = (client(), emu.base_url());
    let s = fal_submit(&c, &base, FAL_MODEL, &input("ephemeral"))
        .await
        .body;
    fal_poll(&c, s["status_url"].as_str().unwrap()).await;
    let completed = tokio::time::Instant::now();
    let result = answer(c.get(s["response_url"].as_str().unwrap())).await;
    let url = result.body["video"]["url"].as_str().unwrap().to_owned();
    tokio::time::sleep_until(completed + Duration::from_millis(1100)).await;
    for gone in [&s["status_url"], &s["response_url"]] {
        let a = answer(c.get(gone.as_str().unwrap())).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{gone}");
        assert!(a.body["detail"].is_string());
    }
    assert_eq!(c.get(&url).send().await.unwrap().status(), StatusCode::OK);
    tokio::time::sleep_until(completed + Duration::from_millis(4100)).await;
    assert_eq!(
        c.get(&url).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn fal_checks_each_models_own_input_with_422s() {
    let emu = start(fast()).await;
    let (c, base) = (client(), emu.base_url());
    let catalogue = shotlist_models::catalogue::Catalogue::builtin();
    let veo = catalogue.find(Api::Fal, FAL_MODEL).unwrap();
    let too_long = "x".repeat(veo.prompt_chars.max + 1);
    let cases = [
        (
            FAL_MODEL,
            json!({"resolution": "720p"}),
            "prompt",
            "missing",
        ),
        (
            FAL_MODEL,
            json!({"prompt": too_long}),
            "prompt",
            "string_too_long",
        ),
        (
            FAL_MODEL,
            json!({"prompt": "p", "resolution": "9000p"}),
            "resolution",
            "value_error",
        ),
        (
            FAL_MODEL,
            json!({"prompt": "p", "duration": "5s"}),
            "duration",
            "value_error",
        ),
        (
            FAL_MODEL,
            json!({"prompt": "p", "duration": 8}),
            "duration",
            "string_type",
        ),
        (
            FAL_MODEL,
            json!({"prompt": "p", "generate_audio": "yes"}),
            "generate_audio",
            "bool_type",
        ),
        (
            "fal-ai/veo3.1/image-to-video",
            json!({"prompt": "p"}),
            "image_url",
            "missing",
        ),
    ];
    for (model, body, field, kind) in cases {
        let a = fal_submit(&c, &base, model, &body).await;
        assert_eq!(
            a.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            a.body
        );
        let entry = &a.body["detail"][0];
        assert_eq!(entry["loc"], json!(["body", field]), "{body}: {entry}");
        assert_eq!(entry["type"], kind, "{body}: {entry}");
        assert!(entry["msg"].is_string());
    }
    let unknown = fal_submit(&c, &base, "fal-ai/no-such-model", &input("p")).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.body["detail"].is_string());
    let not_json = answer(c.post(format!("{base}/{FAL_MODEL}")).body("{")).await;
    assert_eq!(not_json.status, StatusCode::UNPROCESSABLE_ENTITY);
    // The catalogue's own id is not a fal path.
    let by_catalogue_id = fal_submit(&c, &base, &veo.id, &input("p")).await;
    assert_eq!(by_catalogue_id.status, StatusCode::NOT_FOUND);
    assert_eq!(emu.stats().jobs_created, 0);
    emu.shutdown().await;
}

#[tokio::test]
async fn fal_auth_is_key_scheme_and_errors_are_fal_shaped() {
    let emu = start(EmulatorConfig {
        api_key: Some("key-id:key-secret".into()),
        ..fast()
    })
    .await;
    let (c, base) = (client(), emu.base_url());
    let url = format!("{base}/{FAL_MODEL}");
    let none = answer(c.post(&url).json(&input("p"))).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert!(none.body["detail"].is_string(), "{}", none.body);
    let bearer = answer(
        c.post(&url)
            .bearer_auth("key-id:key-secret")
            .json(&input("p")),
    )
    .await;
    assert_eq!(bearer.status, StatusCode::UNAUTHORIZED, "fal reads `Key`");
    let (name, value) = fal_key("key-id:key-secret");
    let ok = answer(c.post(&url).header(name, value).json(&input("p"))).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    emu.shutdown().await;

    let emu = start(EmulatorConfig {
        faults: "503=1".parse().unwrap(),
        ..fast()
    })
    .await;
    let a = fal_submit(&client(), &emu.base_url(), FAL_MODEL, &input("p")).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(a.body["detail"].is_string());
    assert_eq!(a.body["error_type"], "runner_unavailable");
    assert_eq!(a.headers["x-fal-error-type"], "runner_unavailable");
    emu.shutdown().await;
}
