//! Emulator responses validated against the official API descriptions vendored in
//! `tests/specs/` (OpenAI `openapi.yaml`, Azure `azure-v1-preview-generated.json`,
//! Replicate `replicate-openapi.json`, OpenRouter `openrouter-openapi.yaml`), checked byte for byte against their recorded
//! sha256 before use.
//!
//! Each schema is checked through a wrapper that embeds the spec's `components`, so
//! `#/components/schemas/...` references resolve. A missing spec file fails the test.

use std::sync::OnceLock;

use reqwest::StatusCode;
use serde_json::{Value, json};

use shotlist_emulator::EmulatorConfig;
use shotlist_models::limits::Api;

use crate::support::*;

const OPENAI_SPEC: (&str, &str) = (
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/specs/openai-openapi.yaml"
    ),
    "db5d7478feae10b4d331834c60d9765a8aa042e38419f9b1694288c11aa8ebc8",
);
const AZURE_SPEC: (&str, &str) = (
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/specs/azure-v1-preview-generated.json"
    ),
    "12d9176d7b21b134d754fec1a4051c9d7638e55b9b034c3eb91644d91656e853",
);

const REPLICATE_SPEC: (&str, &str) = (
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/specs/replicate-openapi.json"
    ),
    "4500bf86453ef1ab65a9e133929ce97f468cff9aa62ab7512d00fd588abb8b39",
);

const OPENROUTER_SPEC: (&str, &str) = (
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/specs/openrouter-openapi.yaml"
    ),
    "469fa24635e2e05617cfb064ded5f561a177859d054705f4c744644fd68068eb",
);

/// The spec's text, refusing a copy that is not the recorded one.
fn read_spec((path, sha256): (&str, &str)) -> String {
    use sha2::Digest;
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("failed to read the API spec `{path}`: {e}"));
    let actual = hex(&sha2::Sha256::digest(text.as_bytes()));
    assert_eq!(
        actual, sha256,
        "`{path}` is not the recorded copy (see tests/specs/SOURCES.md)"
    );
    text
}

fn openai_components() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        let options = serde_saphyr::options! { budget: None };
        let spec: Value = serde_saphyr::from_str_with_options(&read_spec(OPENAI_SPEC), options)
            .expect("the OpenAI spec parses");
        spec["components"].clone()
    })
}

fn openrouter_components() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        let options = serde_saphyr::options! { budget: None };
        let spec: Value = serde_saphyr::from_str_with_options(&read_spec(OPENROUTER_SPEC), options)
            .expect("the OpenRouter spec parses");
        spec["components"].clone()
    })
}

fn azure_components() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        let spec: Value =
            serde_json::from_str(&read_spec(AZURE_SPEC)).expect("the Azure spec parses");
        spec["components"].clone()
    })
}

/// Replicate's whole spec. It is OpenAPI 3.1 but writes nullable fields the 3.0 way
/// (`nullable: true` beside `type`), which JSON Schema 2020-12 ignores; each such `type`
/// becomes `[type, "null"]`, which is what the spec means (its own examples have
/// `"error": null`).
fn replicate_spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        let mut spec: Value =
            serde_json::from_str(&read_spec(REPLICATE_SPEC)).expect("the Replicate spec parses");
        fn nullable(v: &mut Value) {
            match v {
                Value::Object(o) => {
                    if o.get("nullable") == Some(&json!(true))
                        && let Some(Value::String(t)) = o.get("type").cloned()
                    {
                        o.insert("type".into(), json!([t, "null"]));
                    }
                    o.values_mut().for_each(nullable);
                }
                Value::Array(a) => a.iter_mut().for_each(nullable),
                _ => {}
            }
        }
        nullable(&mut spec);
        spec
    })
}

/// Validates `instance` against `#/components/schemas/{name}` of `components`.
fn check(components: &Value, name: &str, instance: &Value) {
    assert!(
        components["schemas"].get(name).is_some(),
        "the spec has no schema `{name}`"
    );
    check_schema(
        components,
        name,
        &json!({ "$ref": format!("#/components/schemas/{name}") }),
        instance,
    );
}

/// Validates `instance` against `schema`, whose references point into `components`.
fn check_schema(components: &Value, name: &str, schema: &Value, instance: &Value) {
    let mut wrapper = schema.clone();
    wrapper["components"] = components.clone();
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&wrapper)
        .unwrap_or_else(|e| panic!("the schema `{name}` compiles: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{name} does not accept {instance}:\n{}",
        errors.join("\n")
    );
}

#[test]
fn schemas_reject_what_they_should() {
    // Guards against a wrapper that validates everything.
    let bad =
        std::panic::catch_unwind(|| check(openai_components(), "VideoResource", &json!({"id": 1})));
    assert!(bad.is_err());
    let bad = std::panic::catch_unwind(|| {
        check(
            azure_components(),
            "VideoGenerationJob",
            &json!({"object": "video"}),
        )
    });
    assert!(bad.is_err());
    let bad = std::panic::catch_unwind(|| {
        check(
            &replicate_spec()["components"],
            "schemas_prediction_response",
            &json!({"id": "x", "status": "done"}),
        )
    });
    assert!(bad.is_err());
    let bad = std::panic::catch_unwind(|| {
        check(
            openrouter_components(),
            "VideoGenerationResponse",
            &json!({"id": "x", "polling_url": "/x", "status": "done"}),
        )
    });
    assert!(bad.is_err());
}

#[tokio::test]
async fn openai_responses_match_the_openai_spec() {
    let emu = start(fast()).await;
    let (c, base) = (client(), emu.base_url());
    let spec = openai_components();
    let created = openai_create(
        &c,
        &base,
        &json!({"prompt": "a kite", "size": "1280x720", "seconds": "4"}),
    )
    .await;
    check(spec, "VideoResource", &created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    for body in poll(&c, &format!("{base}/v1/videos/{id}"), openai_finished).await {
        check(spec, "VideoResource", &body);
    }
    let failed_id = openai_create(&c, &base, &json!({"prompt": "forbidden"}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let failed = poll(
        &c,
        &format!("{base}/v1/videos/{failed_id}"),
        openai_finished,
    )
    .await;
    check(spec, "VideoResource", failed.last().unwrap());
    let remix = answer(
        c.post(format!("{base}/v1/videos/{id}/remix"))
            .json(&json!({"prompt": "a kite at dusk"})),
    )
    .await;
    check(spec, "VideoResource", &remix.body);

    let list = answer(c.get(format!("{base}/v1/videos?limit=2"))).await;
    check(spec, "VideoListResource", &list.body);
    let empty = answer(c.get(format!("{base}/v1/videos?after=video_unknown"))).await;
    check(spec, "VideoListResource", &empty.body);
    let deleted = answer(c.delete(format!("{base}/v1/videos/{failed_id}"))).await;
    check(spec, "DeletedVideoResource", &deleted.body);

    for error in [
        openai_create(&c, &base, &json!({"prompt": "p", "size": "1x1"})).await,
        openai_create(&c, &base, &json!({"prompt": "p", "seconds": 4})).await,
        answer(c.get(format!("{base}/v1/videos/video_missing"))).await,
        answer(c.get(format!("{base}/v1/videos/{id}/content?variant=gif"))).await,
    ] {
        assert!(error.status.is_client_error());
        check(spec, "ErrorResponse", &error.body);
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn azure_responses_match_the_azure_spec() {
    let emu = start(fast()).await;
    let (c, base) = (client(), emu.base_url());
    let spec = azure_components();
    let created = azure_create(&c, &base, &azure_job("a harbour", 854, 480, 3, 2)).await;
    check(spec, "VideoGenerationJob", &created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let seen = poll(&c, &format!("{base}{AZ}/jobs/{id}?{V}"), azure_finished).await;
    for body in &seen {
        check(spec, "VideoGenerationJob", body);
    }
    let gen_id = seen.last().unwrap()["generations"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let generation = answer(c.get(format!("{base}{AZ}/{gen_id}?{V}"))).await;
    check(spec, "VideoGeneration", &generation.body);
    let failed_id = azure_create(&c, &base, &azure_job("forbidden", 480, 480, 1, 1))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let failed = poll(
        &c,
        &format!("{base}{AZ}/jobs/{failed_id}?{V}"),
        azure_finished,
    )
    .await;
    check(spec, "VideoGenerationJob", failed.last().unwrap());

    for query in [
        "limit=1",
        "limit=10&statuses=succeeded,failed",
        "statuses=queued",
    ] {
        let list = answer(c.get(format!("{base}{AZ}/jobs?{V}&{query}"))).await;
        assert_eq!(list.status, StatusCode::OK);
        check(spec, "VideoGenerationJobList", &list.body);
    }

    for error in [
        azure_create(&c, &base, &azure_job("p", 1000, 1000, 5, 1)).await,
        azure_create(&c, &base, &azure_job("p", 480, 480, 50, 1)).await,
        answer(c.get(format!("{base}{AZ}/jobs/task_missing?{V}"))).await,
        answer(c.get(format!("{base}{AZ}/jobs"))).await,
    ] {
        assert!(error.status.is_client_error());
        assert!(
            error.body["error"]["code"].is_string() && error.body["error"]["message"].is_string()
        );
        check(
            spec,
            "AzureOpenAIVideoGenerationErrorResponse",
            &error.body["error"],
        );
        check(
            spec,
            "AzureErrorResponse",
            &json!({"error": {"code": error.body["error"]["code"], "message": error.body["error"]["message"]}}),
        );
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn replicate_responses_match_the_replicate_spec() {
    let emu = start(EmulatorConfig {
        max_running: 1,
        ..fast()
    })
    .await;
    let (c, base) = (client(), emu.base_url());
    let spec = replicate_spec();
    let components = &spec["components"];
    let prediction = "schemas_prediction_response";
    let (size, seconds) = smallest(Api::Replicate, REPLICATE_MODEL);
    let input = model_input(Api::Replicate, REPLICATE_MODEL, "a kite", size, seconds);
    let created = replicate_create(&c, &base, REPLICATE_MODEL, &input).await;
    check(components, prediction, &created.body);
    let queued = replicate_create(&c, &base, REPLICATE_MODEL, &input).await;
    check(components, prediction, &queued.body);
    for body in poll(
        &c,
        created.body["urls"]["get"].as_str().unwrap(),
        replicate_finished,
    )
    .await
    {
        check(components, prediction, &body);
    }
    let by_version = answer(
        c.post(format!("{base}/v1/predictions"))
            .header("cancel-after", "1h")
            .json(&json!({"version": REPLICATE_MODEL, "input": input})),
    )
    .await;
    check(components, prediction, &by_version.body);
    let id = by_version.body["id"].as_str().unwrap();
    let canceled = answer(c.post(format!("{base}/v1/predictions/{id}/cancel"))).await;
    assert_eq!(canceled.body["status"], "canceled");
    check(components, prediction, &canceled.body);
    let failed = replicate_create(
        &c,
        &base,
        REPLICATE_MODEL,
        &model_input(Api::Replicate, REPLICATE_MODEL, "forbidden", size, seconds),
    )
    .await;
    let failed = poll(
        &c,
        failed.body["urls"]["get"].as_str().unwrap(),
        replicate_finished,
    )
    .await;
    check(components, prediction, failed.last().unwrap());

    let list_schema = &spec["paths"]["/predictions"]["get"]["responses"]["200"]["content"]["application/json"]
        ["schema"];
    assert!(list_schema.is_object(), "the spec lists predictions");
    for query in ["", "?created_after=2000-01-01T00:00:00Z"] {
        let list = answer(c.get(format!("{base}/v1/predictions{query}"))).await;
        assert_eq!(list.status, StatusCode::OK);
        check(
            components,
            "schemas_paginated_prediction_response",
            &list.body,
        );
        check_schema(components, "GET /predictions 200", list_schema, &list.body);
    }

    // The spec gives error bodies inline, as problem details with a `detail` string.
    let problem = &spec["paths"]["/files/{file_id}"]["delete"]["responses"]["404"]["content"]["application/problem+json"]
        ["schema"];
    assert!(problem.is_object(), "the spec has a problem+json schema");
    let errors = [
        answer(c.get(format!("{base}/v1/predictions/missing"))).await,
        replicate_create(&c, &base, REPLICATE_MODEL, &json!({"resolution": "9000p"})).await,
        replicate_create(&c, &base, "nobody/nothing", &input).await,
        answer(c.get(format!("{base}/v1/predictions?cursor=zz"))).await,
    ];
    for error in errors {
        assert!(error.status.is_client_error(), "{}", error.body);
        assert_eq!(error.headers["content-type"], "application/problem+json");
        check_schema(components, "problem+json", problem, &error.body);
        check_schema(
            components,
            "RFC 7807 problem details",
            &json!({
                "type": "object",
                "required": ["type", "title", "status", "detail"],
                "properties": {
                    "type": {"type": "string"}, "title": {"type": "string"},
                    "status": {"const": error.status.as_u16()}, "detail": {"type": "string"},
                },
            }),
            &error.body,
        );
    }
    emu.shutdown().await;
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn openrouter_responses_match_the_openrouter_spec() {
    let key = "sk-or-conformance";
    let (body, size, seconds) = {
        let (size, seconds) = smallest(Api::Openrouter, OPENROUTER_MODEL);
        (
            openrouter_body(OPENROUTER_MODEL, "a kite", size, seconds),
            size,
            seconds,
        )
    };
    let emu = start(EmulatorConfig {
        api_key: Some(key.into()),
        ..fast()
    })
    .await;
    let (c, base) = (bearer_client(key), emu.base_url());
    let spec = openrouter_components();
    let response = "VideoGenerationResponse";
    let created = openrouter_create(&c, &base, &body).await;
    assert_eq!(created.status, StatusCode::ACCEPTED);
    check(spec, response, &created.body);
    let seen = poll(
        &c,
        created.body["polling_url"].as_str().unwrap(),
        openrouter_finished,
    )
    .await;
    assert_eq!(seen.last().unwrap()["status"], "completed");
    for body in &seen {
        check(spec, response, body);
    }
    let failed = openrouter_create(
        &c,
        &base,
        &openrouter_body(OPENROUTER_MODEL, "forbidden", size, seconds),
    )
    .await;
    let failed = poll(
        &c,
        failed.body["polling_url"].as_str().unwrap(),
        openrouter_finished,
    )
    .await;
    assert_eq!(failed.last().unwrap()["status"], "failed");
    check(spec, response, failed.last().unwrap());

    let models = answer(c.get(format!("{base}{OR}/models"))).await;
    assert_eq!(models.status, StatusCode::OK);
    check(spec, "VideoModelsListResponse", &models.body);

    let mut bad_duration = body.clone();
    bad_duration["duration"] = json!(0);
    let mut unknown = body.clone();
    unknown["model"] = json!("nobody/nothing");
    let errors = [
        (
            openrouter_create(&c, &base, &bad_duration).await,
            "BadRequestResponse",
        ),
        (
            openrouter_create(&c, &base, &unknown).await,
            "NotFoundResponse",
        ),
        (
            answer(c.get(format!("{base}{OR}/gen-vid-0-missing"))).await,
            "NotFoundResponse",
        ),
        (
            answer(client().get(format!("{base}{OR}/models"))).await,
            "UnauthorizedResponse",
        ),
    ];
    for (error, schema) in errors {
        assert!(error.status.is_client_error(), "{}", error.body);
        check(spec, schema, &error.body);
    }
    emu.shutdown().await;

    // 402, 429 and 500 come from the credit, the quota and faults.
    let (c, expensive) = (client(), body);
    let emu = start(EmulatorConfig {
        credit_usd: Some(0.0),
        ..fast()
    })
    .await;
    let refused = openrouter_create(&c, &emu.base_url(), &expensive).await;
    assert_eq!(refused.status, StatusCode::PAYMENT_REQUIRED);
    check(spec, "PaymentRequiredResponse", &refused.body);
    emu.shutdown().await;
    for (faults, status, schema) in [
        (
            "429=1",
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequestsResponse",
        ),
        (
            "500=1",
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerResponse",
        ),
    ] {
        let emu = start(EmulatorConfig {
            faults: faults.parse().unwrap(),
            ..fast()
        })
        .await;
        let a = answer(c.get(format!("{}{OR}/models", emu.base_url()))).await;
        assert_eq!(a.status, status);
        check(spec, schema, &a.body);
        emu.shutdown().await;
    }
}
