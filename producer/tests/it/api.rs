//! `herald-producer serve`: every status code, idempotency across HTTP and the CLI, batches,
//! and the OpenAPI document agreeing with the routes (and with producer/openapi.json).

use std::sync::Arc;
use std::time::Duration;

use assert_cmd::Command;
use herald_shared::{Lane, Redacted};
use herald_tests::RedisServer;
use producer::api::auth::Tokens;
use producer::api::{ApiState, MAX_BATCH, SINGLE_BODY_LIMIT, router};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{self, dbsize, lane_jobs, request_with_suggestions};

const TOKEN: &str = "token-1";

struct Api {
    redis: RedisServer,
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn start() -> Api {
        let redis = RedisServer::start();
        let state = ApiState {
            producer: support::producer(&redis).await,
            tokens: Arc::new(Tokens::parse(&Redacted::new(format!("{TOKEN},token-2"))).unwrap()),
            zone: herald_shared::schedule::Zone::default(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(producer::api::serve(
            listener,
            state,
            std::future::pending(),
        ));
        Api {
            redis,
            base,
            http: reqwest::Client::new(),
        }
    }

    async fn post(
        &self,
        path: &str,
        body: impl Into<reqwest::Body>,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .body(body)
            .header("content-type", "application/json");
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn post_json(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.post(path, body.to_string(), Some(TOKEN)).await
    }
}

fn otp() -> Value {
    json!({"phone": "+919999999999", "code": "123456", "valid_for": "5m"})
}

fn booking() -> Value {
    json!({"phone": "+919999999999", "booking_id": "B1", "service": "Haircut", "date": "2026-11-24", "time": "10:30"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_route_enqueues_on_its_lane_with_202() {
    let api = Api::start().await;
    let raw = json!({"request": serde_json::from_str::<Value>(&support::fixture("request-template-carousel.json")).unwrap()});
    for (path, body, lane) in [
        ("/v1/jobs/otp", otp(), Lane::Otp),
        ("/v1/jobs/booking", booking(), Lane::Booking),
        ("/v1/jobs/raw", raw, Lane::Booking),
    ] {
        let (status, answer) = api.post_json(path, body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{path}: {answer}");
        assert_eq!(answer["duplicate"], false);
        let id = answer["job_id"].as_str().unwrap();
        assert!(
            lane_jobs(&api.redis, lane)
                .iter()
                .any(|j| j.id.to_string() == id),
            "{path}"
        );
    }
    let otp_job = &lane_jobs(&api.redis, Lane::Otp)[0];
    assert_eq!(
        otp_job.not_after.unwrap() - otp_job.created_at,
        Duration::from_secs(300)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_bodies_get_400_naming_every_field_and_write_nothing() {
    let api = Api::start().await;
    let cases = [
        (
            "/v1/jobs/booking",
            json!({"phone": "+919999999999", "booking_id": "B1", "service": "Haircut", "date": "24/11/2026", "time": "25:99"}),
            vec!["date", "time"],
        ),
        (
            "/v1/jobs/otp",
            json!({"phone": "12345", "code": "123456"}),
            vec!["phone"],
        ),
        ("/v1/jobs/otp", json!({"phone": "+919999999999"}), vec!["."]),
        (
            "/v1/jobs/otp",
            json!({"phone": "+919999999999", "code": "1", "colour": "red"}),
            vec!["."],
        ),
        (
            "/v1/jobs/otp",
            json!({"phone": "+919999999999", "code": "1", "valid_for": "soon"}),
            vec!["valid_for"],
        ),
        (
            "/v1/jobs/raw",
            json!({"request": request_with_suggestions(5)}),
            vec!["message.richCardDetails.standalone.content.suggestions"],
        ),
        (
            "/v1/jobs/otp",
            json!({"phone": "+919999999999", "code": "1", "tenant": "salon/a"}),
            vec!["tenant"],
        ),
        (
            "/v1/jobs/raw",
            json!({"request": request_with_suggestions(1), "lane": "urgent"}),
            vec!["lane"],
        ),
        (
            "/v1/jobs/raw",
            json!({"request": request_with_suggestions(1), "lane": "otp"}),
            vec!["lane"],
        ),
    ];
    for (path, body, paths) in cases {
        let (status, answer) = api.post_json(path, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(answer["error"], "invalid");
        let got: Vec<&str> = answer["violations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["path"].as_str().unwrap())
            .collect();
        for path in paths {
            assert!(
                got.iter()
                    .any(|g| *g == path || (path == "." && !g.is_empty())),
                "{body}: {answer}"
            );
        }
    }
    let (status, answer) = api.post("/v1/jobs/otp", "{not json", Some(TOKEN)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(dbsize(&api.redis), 0, "an invalid request wrote to Redis");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_body_limits_and_outages() {
    let mut api = Api::start().await;
    let (status, answer) = api.post("/v1/jobs/otp", otp().to_string(), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    let (status, _) = api
        .post("/v1/jobs/otp", otp().to_string(), Some("token-3"))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = api
        .post("/v1/jobs/otp", otp().to_string(), Some("token-2"))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);

    let huge = json!({"phone": "+919999999999", "code": "1", "idempotency_key": "k".repeat(SINGLE_BODY_LIMIT)});
    let (status, answer) = api.post_json("/v1/jobs/otp", huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");

    api.redis.kill();
    let response = api
        .http
        .post(format!("{}/v1/jobs/otp", api.base))
        .bearer_auth(TOKEN)
        .body(otp().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    let ready = api
        .http
        .get(format!("{}/readyz", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    api.redis.start_again();
    let ready = api
        .http
        .get(format!("{}/readyz", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let metrics = api
        .http
        .get(format!("{}/metrics", api.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("herald_api_requests_total"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_holds_across_http_and_the_cli() {
    let api = Api::start().await;
    let cli_id = Command::cargo_bin("herald-producer")
        .unwrap()
        .args([
            "otp",
            "--phone",
            "+919999999999",
            "--code",
            "123456",
            "--idempotency-key",
            "login:42",
        ])
        .env("REDIS_URL", api.redis.url())
        .env("HERALD_NAMESPACE", support::NAMESPACE)
        .output()
        .unwrap();
    assert!(cli_id.status.success());
    let cli_id = String::from_utf8(cli_id.stdout).unwrap().trim().to_string();

    let response = api
        .http
        .post(format!("{}/v1/jobs/otp", api.base))
        .bearer_auth(TOKEN)
        .header("Idempotency-Key", "login:42")
        .body(otp().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["job_id"], cli_id.as_str());
    assert_eq!(answer["duplicate"], true);
    let mut body = otp();
    body["idempotency_key"] = json!("login:42");
    let (status, answer) = api.post_json("/v1/jobs/otp", body).await;
    assert_eq!(
        (status, answer["job_id"].as_str()),
        (StatusCode::ACCEPTED, Some(cli_id.as_str()))
    );
    assert_eq!(
        lane_jobs(&api.redis, Lane::Otp).len(),
        1,
        "one job for one key"
    );

    let mismatch = api
        .http
        .post(format!("{}/v1/jobs/otp", api.base))
        .bearer_auth(TOKEN)
        .header("Idempotency-Key", "a")
        .body(json!({"phone": "+919999999999", "code": "1", "idempotency_key": "b"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(mismatch.status(), StatusCode::BAD_REQUEST);
    // Both places are named, and what to do instead; nothing is enqueued.
    let answer: Value = mismatch.json().await.unwrap();
    let named: Vec<&str> = answer["violations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["path"].as_str())
        .collect();
    assert_eq!(named, ["Idempotency-Key", "idempotency_key"], "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(
        message.contains("Idempotency-Key header and the body's idempotency_key differ")
            && message.contains("the same key in both"),
        "{message}"
    );
    assert_eq!(lane_jobs(&api.redis, Lane::Otp).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_state_is_read_back() {
    let api = Api::start().await;
    let (_, answer) = api.post_json("/v1/jobs/booking", booking()).await;
    let id = answer["job_id"].as_str().unwrap().to_string();
    let get = |path: String| {
        api.http
            .get(format!("{}{path}", api.base))
            .bearer_auth(TOKEN)
            .send()
    };
    let response = get(format!("/v1/jobs/{id}")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let state: Value = response.json().await.unwrap();
    assert_eq!(
        (state["job_id"].as_str(), state["state"].as_str()),
        (Some(id.as_str()), Some("queued")),
        "{state}"
    );
    assert_eq!(state["events"][0]["event"], "enqueued");

    let unknown = get(format!("/v1/jobs/{}", uuid::Uuid::now_v7()))
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let bad = get("/v1/jobs/not-a-uuid".to_string()).await.unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let answer: Value = bad.json().await.unwrap();
    assert_eq!(answer["violations"][0]["path"], "id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_answer_per_item() {
    let api = Api::start().await;
    let mut good_otp = otp();
    good_otp["kind"] = json!("otp");
    good_otp["idempotency_key"] = json!("once");
    let mut good_booking = booking();
    good_booking["kind"] = json!("booking");
    let batch = json!([good_otp, {"kind": "fax"}, good_booking, good_otp]);
    let (status, answer) = api.post_json("/v1/jobs/batch", batch).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(batch_counts(&answer), (Some(2), Some(1), Some(1)));
    let items = answer["items"].as_array().unwrap();
    assert_eq!(items[1]["error"]["violations"][0]["path"], "kind");
    assert_eq!(items[3]["job_id"], items[0]["job_id"]);
    assert_eq!(items[3]["duplicate"], true);

    let (status, _) = api
        .post_json("/v1/jobs/batch", json!([{"kind": "fax"}]))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, answer) = api
        .post_json(
            "/v1/jobs/batch",
            Value::Array(vec![good_booking; MAX_BATCH + 1]),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(lane_jobs(&api.redis, Lane::Booking).len(), 1);
}

/// A batch large enough to be decoded in parts (one per core) answers every item at its
/// own index: bad items wherever they fall, each good one enqueued in the batch's order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_batch_answers_each_item_at_its_index() {
    let api = Api::start().await;
    let bad = [0_usize, 63, 64, 500, 998];
    let items: Vec<Value> = (0..999)
        .map(|i| {
            if bad.contains(&i) {
                json!({"kind": "otp", "phone": format!("not-a-phone-{i}"), "code": "1234"})
            } else {
                json!({"kind": "otp", "phone": format!("+9198{:08}", 10_000_000 + i), "code": "1234"})
            }
        })
        .collect();
    let (status, answer) = api.post_json("/v1/jobs/batch", Value::Array(items)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let answers = answer["items"].as_array().unwrap();
    assert_eq!(answers.len(), 999);
    for (i, item) in answers.iter().enumerate() {
        assert_eq!(item["index"], i, "{item}");
        assert_eq!(
            item["error"]["violations"][0]["path"] == "phone",
            bad.contains(&i),
            "item {i}: {item}"
        );
    }
    let queued: Vec<String> = lane_jobs(&api.redis, Lane::Otp)
        .iter()
        .map(|job| job.id.to_string())
        .collect();
    let answered: Vec<String> = answers
        .iter()
        .filter_map(|item| item["job_id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(queued, answered, "on the lane in the batch's order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_enqueues_nothing_answers_an_error_body() {
    let api = Api::start().await;
    // Nothing enqueued is never a `BatchAccepted`: the body is an error, as its status says.
    let (status, answer) = api.post_json("/v1/jobs/batch", json!([])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"], "invalid", "{answer}");
    assert_eq!(answer["violations"][0]["path"], ".", "{answer}");
    let (status, answer) = api
        .post_json("/v1/jobs/batch", json!([{"kind": "fax"}]))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"], "invalid", "{answer}");
    assert!(answer.get("enqueued").is_none(), "{answer}");
    assert_eq!(
        answer["items"][0]["error"]["violations"][0]["path"], "kind",
        "{answer}"
    );

    // Every item refused because its key holds other content: 409, like a single enqueue.
    let item = |code: &str| json!({"kind": "otp", "phone": "+919999999999", "code": code, "idempotency_key": "login:7"});
    let (status, _) = api.post_json("/v1/jobs/batch", json!([item("1111")])).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, answer) = api
        .post_json("/v1/jobs/batch", json!([item("2222"), item("3333")]))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["error"], "idempotency_conflict", "{answer}");
    assert_eq!(
        answer["items"].as_array().map(Vec::len),
        Some(2),
        "{answer}"
    );
    assert_eq!(lane_jobs(&api.redis, Lane::Otp).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_phone_is_e164_exactly_as_the_document_says() {
    let api = Api::start().await;
    for phone in [
        "+91 99999 99999",
        " +919999999999",
        "+91-9999999999",
        "919999999999",
    ] {
        let (status, answer) = api
            .post_json("/v1/jobs/otp", json!({"phone": phone, "code": "123456"}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{phone:?}: {answer}");
        assert_eq!(answer["violations"][0]["path"], "phone", "{answer}");
    }
    let (status, answer) = api
        .post_json(
            "/v1/jobs/otp",
            json!({"phone": "+919999999999", "code": " 123456\n"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "spaces around a code are trimmed: {answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_agrees_with_the_routes_and_the_repository() {
    let api = Api::start().await;
    let served: Value = api
        .http
        .get(format!("{}/openapi.json", api.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kept: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json")).unwrap(),
    )
    .expect("producer/openapi.json is valid JSON");
    assert_eq!(
        served, kept,
        "producer/openapi.json is stale: run `herald-producer openapi > producer/openapi.json`"
    );

    // Every documented operation is routed (it answers 401 without a token, never 404/405).
    let paths = served["paths"].as_object().unwrap();
    for (path, operations) in paths {
        for method in operations.as_object().unwrap().keys() {
            let request = api.http.request(
                method.to_uppercase().parse().unwrap(),
                format!("{}{path}", api.base),
            );
            let status = request.send().await.unwrap().status();
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} is documented but not routed"
            );
        }
    }
    // And every routed job path is documented.
    let state = ApiState {
        producer: support::producer(&api.redis).await,
        tokens: Arc::new(Tokens::default()),
        zone: herald_shared::schedule::Zone::default(),
    };
    let (_, doc) = router(state);
    let documented: Vec<&String> = doc.paths.paths.keys().collect();
    for route in [
        "/v1/jobs/otp",
        "/v1/jobs/booking",
        "/v1/jobs/raw",
        "/v1/jobs/batch",
    ] {
        assert!(
            documented.iter().any(|p| *p == route),
            "{route} undocumented"
        );
        let status = api
            .http
            .get(format!("{}{route}", api.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{route}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_reused_for_other_content_is_a_409_naming_the_first_job() {
    let api = Api::start().await;
    let post = |body: Value, path: &'static str| {
        api.http
            .post(format!("{}{path}", api.base))
            .bearer_auth(TOKEN)
            .header("Idempotency-Key", "login:42")
            .body(body.to_string())
            .send()
    };
    let code = |code: &str| json!({"phone": "+919999999999", "code": code, "valid_for": "5m"});
    let first: Value = post(code("731904"), "/v1/jobs/otp")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let first_id = first["job_id"].as_str().unwrap().to_string();

    // Same key, same content: the first job's id.
    let again = post(code("731904"), "/v1/jobs/otp").await.unwrap();
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    let again: Value = again.json().await.unwrap();
    assert_eq!(
        (again["job_id"].as_str(), again["duplicate"].as_bool()),
        (Some(first_id.as_str()), Some(true))
    );

    // Same key, a new code, or a booking: 409, naming the key and the first job.
    for (path, body) in [
        ("/v1/jobs/otp", code("555111")),
        ("/v1/jobs/booking", booking()),
    ] {
        let response = post(body, path).await.unwrap();
        assert_eq!(response.status(), StatusCode::CONFLICT, "{path}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"], "idempotency_conflict", "{answer}");
        assert_eq!(answer["job_id"], first_id.as_str(), "{answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(message.contains("login:42"), "{answer}");
        assert!(
            !answer.to_string().contains("555111"),
            "the code leaked: {answer}"
        );
    }
    let otps = lane_jobs(&api.redis, Lane::Otp);
    assert_eq!(otps.len(), 1, "only the first job");
    assert_eq!(otps[0].id.to_string(), first_id);
    assert!(lane_jobs(&api.redis, Lane::Booking).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_for_past_24h_is_a_400_naming_valid_for() {
    let api = Api::start().await;
    for valid_for in ["100000000y", "25h", "24h 1s"] {
        let body = json!({"phone": "+919999999999", "code": "123456", "valid_for": valid_for});
        let (status, answer) = api.post_json("/v1/jobs/otp", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{valid_for}: {answer}");
        assert_eq!(answer["error"], "invalid", "{answer}");
        assert_eq!(answer["violations"][0]["path"], "valid_for", "{answer}");
        assert!(
            answer["violations"][0]["reason"]
                .as_str()
                .unwrap()
                .contains("24h"),
            "{answer}"
        );
    }
    assert_eq!(dbsize(&api.redis), 0, "an invalid request wrote to Redis");
    let body = json!({"phone": "+919999999999", "code": "123456", "valid_for": "24h"});
    let (status, answer) = api.post_json("/v1/jobs/otp", body).await;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "24h is the most, allowed: {answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_rejects_unbounded_and_conflicting_items_and_enqueues_the_rest() {
    let api = Api::start().await;
    let otp_item = |code: &str, valid_for: &str, key: &str| json!({"kind": "otp", "phone": "+919999999999", "code": code, "valid_for": valid_for, "idempotency_key": key});
    let mut good_booking = booking();
    good_booking["kind"] = json!("booking");
    let batch = json!([
        otp_item("731904", "5m", "login:42"),
        otp_item("111111", "100000000y", "login:43"),
        good_booking,
        otp_item("555111", "5m", "login:42"),
        otp_item("731904", "10m", "login:42"),
    ]);
    let (status, answer) = api.post_json("/v1/jobs/batch", batch).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(
        batch_counts(&answer),
        (Some(2), Some(1), Some(2)),
        "{answer}"
    );
    let items = answer["items"].as_array().unwrap();
    let first = items[0]["job_id"].as_str().unwrap();
    assert_eq!(
        items[1]["error"]["violations"][0]["path"], "valid_for",
        "{answer}"
    );
    assert_eq!(
        items[3]["error"]["error"], "idempotency_conflict",
        "{answer}"
    );
    assert_eq!(items[3]["error"]["job_id"], first, "{answer}");
    assert!(
        items[3]["job_id"].is_null(),
        "a rejected item has no job: {answer}"
    );
    assert_eq!(
        (items[4]["job_id"].as_str(), items[4]["duplicate"].as_bool()),
        (Some(first), Some(true))
    );
    assert_eq!(lane_jobs(&api.redis, Lane::Otp).len(), 1);
    assert_eq!(lane_jobs(&api.redis, Lane::Booking).len(), 1);
}

/// A batch answer's `(enqueued, duplicates, rejected)`.
fn batch_counts(answer: &serde_json::Value) -> (Option<u64>, Option<u64>, Option<u64>) {
    (
        answer["enqueued"].as_u64(),
        answer["duplicates"].as_u64(),
        answer["rejected"].as_u64(),
    )
}
