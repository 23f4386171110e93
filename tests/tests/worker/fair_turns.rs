//! Every sender gets its turn: a booking confirmation is not held up by a morning's
//! reminders or a campaign (the lanes share what OTPs leave by weight), and one tenant's
//! backlog never delays another tenant's job by more than a turn. Black-box: every job is
//! enqueued with the `herald-producer` binary and sent by `herald-worker run` replicas; a
//! job's wait is from its enqueue (its UUID v7's time) to the sandbox's receipt.

use std::collections::BTreeMap;
use std::time::Duration;

use herald_tests::scenario::{SandboxSetup, Scenario};
use herald_tests::wait_until;
use rand::{RngExt, SeedableRng};

/// The plan of these tests: one token every 200 ms.
const RATE: &str = "30/6s";
const TOKEN_INTERVAL_MS: u64 = 200;
/// The goal: three token intervals, plus 100 ms.
const BOUND_MS: u64 = 3 * TOKEN_INTERVAL_MS + 100;

fn phone(prefix: &str, i: usize) -> String {
    format!("+91{prefix}{i:08}")
}

/// A JSON line of `kind` (`booking`, `reminder`, or `bulk`: a raw request on the bulk lane)
/// for `phone`, of `tenant` if any.
fn line(kind: &str, phone: &str, i: usize, tenant: Option<&str>) -> String {
    let tenant = tenant.map_or(String::new(), |t| format!(r#","tenant":"{t}""#));
    match kind {
        "booking" | "reminder" => format!(
            r#"{{"kind":"{kind}","phone":"{phone}","booking_id":"{kind}-{i}","service":"Haircut","date":"2030-11-24","time":"10:30"{tenant}}}"#
        ),
        "bulk" => {
            let national = &phone[3..];
            format!(
                r#"{{"kind":"raw","lane":"bulk","request":{{"countryCode":"+91","phoneNumber":"{national}","type":"Template","template":{{"name":"offer","languageCode":"en"}}}}{tenant}}}"#
            )
        }
        other => panic!("no such kind {other}"),
    }
}

/// When job `id` was enqueued, Unix ms (a UUID v7's time).
fn enqueued_ms(id: &str) -> u64 {
    let (secs, nanos) = uuid::Uuid::parse_str(id)
        .expect("a job id")
        .get_timestamp()
        .expect("a UUID v7")
        .to_unix();
    secs * 1000 + u64::from(nanos) / 1_000_000
}

fn seeded_rng() -> rand::rngs::StdRng {
    let seed: u64 = std::env::var("HERALD_TEST_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("seed {seed} (HERALD_TEST_SEED replays it)");
    rand::rngs::StdRng::seed_from_u64(seed)
}

/// Enqueues single bookings with `extra` flags at random moments while the backlog drains,
/// and returns each one's wait in ms, from its enqueue to the sandbox.
async fn probe_waits(s: &Scenario, probes: usize, extra: &[&str]) -> Vec<u64> {
    let mut rng = seeded_rng();
    let mut waits = Vec::new();
    for i in 0..probes {
        // At random moments, so some land right after a token was spent.
        tokio::time::sleep(Duration::from_millis(rng.random_range(200..1_200))).await;
        let to = phone("77", i);
        let mut args = vec![
            "booking",
            "--phone",
            &to,
            "--booking-id",
            "probe",
            "--service",
            "Haircut",
            "--date",
            "2030-11-24",
            "--time",
            "10:30",
        ];
        args.extend_from_slice(extra);
        let id = s.enqueue_with_producer(&args);
        wait_until("the probe sent", Duration::from_secs(20), || async {
            s.accepted_phones().contains(&to)
        })
        .await;
        let sent = s
            .accepted()
            .into_iter()
            .find(|m| m.e164() == to)
            .expect("accepted");
        waits.push(sent.received_ms.saturating_sub(enqueued_ms(&id)));
    }
    waits
}

fn assert_within_bound(waits: &[u64], what: &str, s: &Scenario) {
    eprintln!("{what}: waits {waits:?} ms (bound {BOUND_MS} ms)");
    for &wait in waits {
        assert!(
            wait <= BOUND_MS,
            "{what} waited {wait} ms: more than three token intervals plus 100 ms ({BOUND_MS} ms); all waits {waits:?}"
        );
    }
    let stats = s.sandbox.stats();
    assert_eq!(stats.count(429), 0, "{stats:?}");
    assert!(stats.max_in_window <= 30, "{stats:?}");
}

/// Behind 2,000 reminders and 2,000 campaign messages, a booking confirmation enqueued
/// afterwards reaches Interakt within three token intervals (plus 100 ms).
async fn a_booking_overtakes_reminders_and_a_campaign(replicas: usize) {
    let s = Scenario::start_exclusive(SandboxSetup {
        rate: Some(RATE),
        ..Default::default()
    })
    .await;
    let mut backlog: Vec<String> = (0..2_000)
        .map(|i| line("reminder", &phone("70", i), i, None))
        .collect();
    backlog.extend((0..2_000).map(|i| line("bulk", &phone("71", i), i, None)));
    s.enqueue_lines(&backlog);
    let _workers: Vec<_> = (0..replicas)
        .map(|i| s.worker(&format!("lanes-{i}"), &["--rate", RATE]))
        .collect();
    wait_until("the backlog started", Duration::from_secs(20), || async {
        s.accepted().len() >= 5
    })
    .await;
    let waits = probe_waits(&s, 4, &[]).await;
    assert_within_bound(&waits, "a booking behind reminders and a campaign", &s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lanes_a_booking_behind_reminders_and_a_campaign_goes_within_three_tokens_one_replica() {
    a_booking_overtakes_reminders_and_a_campaign(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lanes_a_booking_behind_reminders_and_a_campaign_goes_within_three_tokens_three_replicas() {
    a_booking_overtakes_reminders_and_a_campaign(3).await;
}

/// Tenant A enqueues 5,000 bookings; tenant B then enqueues one: B's reaches Interakt within
/// three token intervals (plus 100 ms), while A's backlog keeps draining at the full rate.
async fn a_tenant_is_not_held_up_by_anothers_backlog(replicas: usize) {
    let s = Scenario::start_exclusive(SandboxSetup {
        rate: Some(RATE),
        ..Default::default()
    })
    .await;
    let backlog: Vec<String> = (0..5_000)
        .map(|i| line("booking", &phone("72", i), i, Some("salon-a")))
        .collect();
    s.enqueue_lines(&backlog);
    let _workers: Vec<_> = (0..replicas)
        .map(|i| s.worker(&format!("tenants-{i}"), &["--rate", RATE]))
        .collect();
    wait_until("A's backlog started", Duration::from_secs(20), || async {
        s.accepted().len() >= 5
    })
    .await;
    let started = s.accepted().len();
    let since = std::time::Instant::now();
    let waits = probe_waits(&s, 4, &["--tenant", "salon-b"]).await;
    assert_within_bound(&waits, "tenant B's booking behind A's backlog", &s);

    // A's backlog kept the full rate meanwhile: every token went to a send (the shared
    // lanes may use N less the OTP reserve: 28 of 30 per 6 s here).
    let elapsed = since.elapsed().as_secs_f64();
    let sent = s.accepted().len() - started;
    let rate = sent as f64 / elapsed;
    eprintln!("{sent} sent in {elapsed:.1} s: {rate:.2}/s (the plan: 5/s)");
    assert!(
        rate >= 0.8 * 5.0 * 28.0 / 30.0,
        "A's backlog slowed down to {rate:.2}/s while B was served"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_b_behind_as_backlog_goes_within_three_tokens_one_replica() {
    a_tenant_is_not_held_up_by_anothers_backlog(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_b_behind_as_backlog_goes_within_three_tokens_three_replicas() {
    a_tenant_is_not_held_up_by_anothers_backlog(3).await;
}

/// With bookings, reminders and a campaign all backlogged, the lanes share the budget by
/// their weights (default booking=6, reminder=3, bulk=1): reminders get about their 30%.
async fn the_lanes_share_by_weight(replicas: usize) {
    let s = Scenario::start_exclusive(SandboxSetup {
        rate: Some("40/2s"),
        ..Default::default()
    })
    .await;
    let mut backlog = Vec::new();
    for (kind, prefix) in [("booking", "73"), ("reminder", "74"), ("bulk", "75")] {
        backlog.extend((0..400).map(|i| line(kind, &phone(prefix, i), i, None)));
    }
    s.enqueue_lines(&backlog);
    let _workers: Vec<_> = (0..replicas)
        .map(|i| s.worker(&format!("weights-{i}"), &["--rate", "40/2s"]))
        .collect();
    wait_until("200 sent", Duration::from_secs(30), || async {
        s.accepted().len() >= 220
    })
    .await;
    // The first 20 are the replicas' start (one read each); then 200 in steady state.
    let mut shares: BTreeMap<&str, usize> = BTreeMap::new();
    for m in s.accepted().iter().skip(20).take(200) {
        let lane = match &m.e164()[3..5] {
            "73" => "booking",
            "74" => "reminder",
            "75" => "bulk",
            other => panic!("an unexpected phone prefix {other}"),
        };
        *shares.entry(lane).or_default() += 1;
    }
    eprintln!("{replicas} replica(s): shares of 200 sends {shares:?}");
    for (lane, expected) in [("booking", 120), ("reminder", 60), ("bulk", 20)] {
        let got = shares.get(lane).copied().unwrap_or(0);
        assert!(
            got.abs_diff(expected) <= 20,
            "{lane} got {got} of 200 sends, expected about {expected}: {shares:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lanes_share_the_budget_by_weight_one_replica() {
    the_lanes_share_by_weight(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lanes_share_the_budget_by_weight_three_replicas() {
    the_lanes_share_by_weight(3).await;
}

/// `status --json` shows each lane's backlog with its oldest ready job's age, and the
/// tenants with the most ready jobs, largest first (at most 20); the text shows the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_each_lanes_oldest_job_and_the_largest_tenants() {
    let s = Scenario::start(SandboxSetup::default()).await;
    let mut lines = Vec::new();
    for t in 0..22 {
        for j in 0..=t {
            let i = t * 100 + j;
            lines.push(line(
                "booking",
                &phone("76", i),
                i,
                Some(&format!("salon-{t:02}")),
            ));
        }
    }
    lines.push(line("reminder", &phone("77", 0), 0, None));
    s.enqueue_lines(&lines);
    wait_until(
        "the oldest job is a few ms old",
        Duration::from_secs(5),
        || async { s.status().await.lanes["booking"].oldest_ms > 0 },
    )
    .await;

    let out = s.run_worker_command(&["status", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["lanes"]["booking"]["ready"], 253, "{status}");
    assert_eq!(status["lanes"]["reminder"]["ready"], 1, "{status}");
    assert!(status["lanes"]["booking"]["oldest_ms"].as_u64().unwrap() > 0);
    assert_eq!(status["lanes"]["otp"]["oldest_ms"], 0);
    let tenants = status["tenants"].as_array().unwrap();
    assert_eq!(tenants.len(), 20, "{status}");
    assert_eq!(tenants[0]["tenant"], "salon-21");
    assert_eq!(tenants[0]["lane"], "booking");
    assert_eq!(tenants[0]["ready"], 22);
    assert!(tenants[0]["oldest_ms"].as_u64().is_some());
    assert_eq!(tenants[19]["tenant"], "salon-02");

    let out = s.run_worker_command(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("tenants with the most ready jobs"), "{text}");
    assert!(text.contains("salon-21"), "{text}");
    assert!(!text.contains("salon-01 "), "only the largest 20: {text}");
}
