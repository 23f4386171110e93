//! Supersede: at most one unsent job per replace key. A newer job cancels the older one
//! while it is unsent (its timeline says `superseded by <id>`, the answer names it); one
//! already being sent stands with its successor. Under load: 1,000 OTPs for 100 users with
//! random resends while three workers drain at a low rate.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use herald_tests::scenario::{SandboxSetup, Scenario, http_request, phone};
use herald_tests::{ApiProcess, wait_until};
use rand::{RngExt, SeedableRng};
use serde_json::Value;

use super::{enqueue, otp_code, text};

const TOKEN: &str = "supersede-test-token";

fn otp_args<'a>(phone: &'a str, code: &'a str, key: &'a str) -> Vec<&'a str> {
    vec![
        "otp",
        "--phone",
        phone,
        "--code",
        code,
        "--replace-key",
        key,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supersede_an_unsent_otp_never_reaches_the_phone() {
    let s = Scenario::start(SandboxSetup::default()).await;
    let p = phone(1);
    let key = format!("otp:{p}");
    let older = enqueue(&s, &otp_args(&p, "111111", &key));
    let out = s.run_producer(&otp_args(&p, "222222", &key));
    assert!(out.status.success(), "{}", text(&out));
    let newer = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains(&format!("superseded job {older}")), "{said}");

    let _w = s.worker("supersede", &["--rate", "50/1s"]);
    wait_until("the newer OTP sent", Duration::from_secs(20), || async {
        !s.accepted().is_empty()
    })
    .await;
    s.wait_drained(Duration::from_secs(20)).await;
    let codes: Vec<String> = s.accepted().iter().map(otp_code).collect();
    assert_eq!(codes, ["222222"], "only the newest code");
    let track = s.run_worker_command(&["track", &older]);
    let shown = String::from_utf8_lossy(&track.stdout);
    assert!(shown.contains("state: superseded"), "{}", text(&track));
    assert!(
        shown.contains(&format!("superseded by {newer}")),
        "{}",
        text(&track)
    );
}

/// The race of the issue: the older job is being sent (its request is at the stand-in, which
/// answers slowly) when the newer one is enqueued: both stand, both are sent, and the newer
/// waits for the older's attempt to be over, so the customer's last code is the newest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supersede_while_the_older_job_is_being_sent_both_stand() {
    let s = Scenario::start(SandboxSetup {
        latency: Duration::from_secs(2),
        ..Default::default()
    })
    .await;
    let p = phone(1);
    let key = format!("otp:{p}");
    let older = enqueue(&s, &otp_args(&p, "111111", &key));
    let _w = s.worker(
        "sending",
        &["--rate", "3000/1m", "--request-timeout", "10s"],
    );
    wait_until("the older OTP being sent", Duration::from_secs(20), || {
        let older = older.clone();
        let mut conn = s.conn.clone();
        let record = s.keys.job_status(&older);
        async move {
            let state: Option<String> = redis::AsyncCommands::hget(&mut conn, record, "state")
                .await
                .unwrap();
            state.as_deref() == Some("sending")
        }
    })
    .await;
    let out = s.run_producer(&otp_args(&p, "222222", &key));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("superseded"),
        "{}",
        text(&out)
    );
    wait_until("both OTPs sent", Duration::from_secs(30), || async {
        s.accepted().len() >= 2
    })
    .await;
    let codes: Vec<String> = s.accepted().iter().map(otp_code).collect();
    assert_eq!(
        codes,
        ["111111", "222222"],
        "in order: the newest code last"
    );
    wait_until(
        "the older OTP recorded as sent",
        Duration::from_secs(10),
        || {
            let mut conn = s.conn.clone();
            let record = s.keys.job_status(&older);
            async move {
                let state: Option<String> = redis::AsyncCommands::hget(&mut conn, record, "state")
                    .await
                    .unwrap();
                state.as_deref() == Some("sent")
            }
        },
    )
    .await;
}

/// 1,000 OTPs for 100 users, each enqueued through the HTTP API with the user's replace key
/// while three workers drain at 60 a second: no superseded code ever reaches the stand-in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supersede_under_load_1000_otps_for_100_users_no_superseded_code_is_sent() {
    let s = Scenario::start(SandboxSetup::default()).await;
    let api = ApiProcess::start(
        &s.redis.url(),
        herald_tests::scenario::NAMESPACE,
        TOKEN,
        &[],
    )
    .await;
    let args = ["--rate", "60/1s", "--concurrency", "8"];
    let _workers: Vec<_> = ["load-a", "load-b", "load-c"]
        .iter()
        .map(|c| s.worker(c, &args))
        .collect();
    let auth = format!("Bearer {TOKEN}");
    let url = format!("{}/v1/jobs/otp", api.base_url());
    let mut rng = rand::rngs::StdRng::seed_from_u64(12);
    let mut code_of_job: HashMap<String, String> = HashMap::new();
    let mut superseded: HashSet<String> = HashSet::new();
    let mut last_of_user: HashMap<usize, String> = HashMap::new();
    let mut stood = 0;
    for i in 0..1000u32 {
        let user = rng.random_range(0..100usize);
        let p = phone(user);
        let code = format!("{:06}", 100_000 + i);
        let body = format!(r#"{{"phone":"{p}","code":"{code}","replace_key":"otp:{p}"}}"#);
        let (status, answer) = http_request(
            "POST",
            &url,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            &body,
        )
        .await
        .unwrap();
        assert_eq!(status, 202, "{answer}");
        let answer: Value = serde_json::from_str(&answer).unwrap();
        let id = answer["job_id"].as_str().unwrap().to_string();
        code_of_job.insert(id.clone(), code);
        match answer["superseded"].as_str() {
            Some(older) => {
                superseded.insert(older.to_string());
            }
            None if last_of_user.contains_key(&user) => stood += 1,
            None => {}
        }
        last_of_user.insert(user, id);
    }
    s.wait_drained(Duration::from_secs(120)).await;
    let sent: Vec<String> = s.accepted().iter().map(otp_code).collect();
    let sent_set: HashSet<&String> = sent.iter().collect();
    let superseded_codes: HashSet<&String> = superseded.iter().map(|id| &code_of_job[id]).collect();
    let leaked: Vec<_> = superseded_codes.intersection(&sent_set).collect();
    let status = s.status().await;
    eprintln!(
        "1000 OTPs for 100 users: {} sent, {} superseded (never sent), {} stood with their successor (already sending or sent), {} dead",
        sent.len(),
        superseded.len(),
        stood,
        status.total.dead
    );
    assert!(
        leaked.is_empty(),
        "superseded codes reached the stand-in: {leaked:?}"
    );
    assert_eq!(sent.len(), sent_set.len(), "no code sent twice");
    assert_eq!(
        sent.len() + superseded.len(),
        1000,
        "every OTP sent or superseded"
    );
    assert_eq!(status.total.cancelled, superseded.len() as u64);
    assert!(
        superseded.len() > 100,
        "the load made resends supersede: {}",
        superseded.len()
    );
}
