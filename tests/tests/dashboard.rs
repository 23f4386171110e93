//! The operator dashboard in a real browser: headless Chromium over WebDriver against a real
//! `herald-dashboard` process, a real worker and the producer CLI, each test with its own
//! redis-server.
//!
//! - `an_operator_logs_in_sees_the_counts_finds_a_booking_and_replays_a_dead_letter`: the
//!   login, the overview's counts against `status --json`, finding a job by booking id, a
//!   dead letter replayed with clicks (preview, confirm) and back on its lane, a queued job
//!   cancelled with clicks, and a forged
//!   POST without the CSRF token answered 403, changing nothing.
//! - `a_read_only_dashboard_shows_no_action_and_refuses_one`: `--read-only`.
//! - `screenshots_of_the_demo` (ignored; run by hand): the operations page's screenshots, from a
//!   real run of the demo.

use std::process::Command;
use std::time::Duration;

use herald_tests::scenario::{NAMESPACE, SandboxSetup, Scenario, http_request};
use herald_tests::{Browser, DashboardProcess, cargo_bin, wait_until};

const TOKEN: &str = "dashboard-test-token";
/// Interakt refuses these phones (400): their bookings are dead-lettered at once.
const REFUSED: [&str; 2] = ["+919000000001", "+919000000002"];
const REFUSED_SCRIPT: [&str; 2] = ["+919000000001=400", "+919000000002=400"];

/// Enqueues a booking with the producer CLI (which writes the booking index) and returns the
/// job id it printed.
fn enqueue_booking(s: &Scenario, phone: &str, booking_id: &str) -> String {
    let out = Command::new(cargo_bin("herald-producer"))
        .args([
            "booking",
            "--phone",
            phone,
            "--booking-id",
            booking_id,
            "--service",
            "Haircut",
            "--date",
            "2030-11-24",
            "--time",
            "10:30",
        ])
        .env("REDIS_URL", s.redis.url())
        .env("HERALD_NAMESPACE", NAMESPACE)
        .output()
        .expect("run herald-producer booking");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn status_json(s: &Scenario) -> serde_json::Value {
    let out = s.run_worker_command(&["status", "--json"]);
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).expect("status --json")
}

/// Three bookings through a real worker: one sent, two dead-lettered (Interakt's 400).
async fn settled_scenario() -> (Scenario, String, Vec<String>) {
    let s = Scenario::start(SandboxSetup {
        script: REFUSED_SCRIPT.to_vec(),
        ..SandboxSetup::default()
    })
    .await;
    let sent = enqueue_booking(&s, "+919000000009", "B-OK");
    let dead: Vec<String> = REFUSED
        .iter()
        .enumerate()
        .map(|(i, phone)| enqueue_booking(&s, phone, &format!("B-DEAD-{i}")))
        .collect();
    let worker = s.worker("w1", &[]);
    wait_until("one sent, two dead", Duration::from_secs(30), || async {
        let t = s.status().await.total;
        t.sent == 1 && t.dead == 2
    })
    .await;
    // The worker's chart history: three requests, two dead letters, one sent (flushed
    // within a second or two).
    let mut conn = s.conn.clone();
    wait_until("the chart history written", Duration::from_secs(10), || {
        let mut conn = conn.clone();
        let keys = s.keys.clone();
        async move { history_total(&mut conn, &keys, "req").await == 3 }
    })
    .await;
    assert_eq!(history_total(&mut conn, &s.keys, "dead").await, 2);
    assert_eq!(history_total(&mut conn, &s.keys, "sent").await, 1);
    drop(worker);
    (s, sent, dead)
}

/// The sum of one series over this hour's and the last hour's 10 s buckets.
async fn history_total(
    conn: &mut redis::aio::MultiplexedConnection,
    keys: &herald_store::Keys,
    series: &str,
) -> u64 {
    let hour = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 3600;
    let suffix = format!(":{series}");
    let mut total = 0;
    for key in [keys.history_fine(hour - 1), keys.history_fine(hour)] {
        let fields: std::collections::HashMap<String, u64> =
            redis::AsyncCommands::hgetall(conn, key).await.unwrap();
        total += fields
            .iter()
            .filter(|(field, _)| field.ends_with(&suffix))
            .map(|(_, n)| n)
            .sum::<u64>();
    }
    total
}

async fn log_in(browser: &Browser, base: &str) {
    browser.client.goto(base).await.expect("open the dashboard");
    // No session: the login page.
    assert!(
        browser.count("form#login").await == 1,
        "redirected to the login"
    );
    browser.fill("input[name=token]", "not-the-token").await;
    browser.click("form#login button").await;
    assert!(
        browser
            .text("#login-error")
            .await
            .contains("HERALD_DASHBOARD_TOKENS"),
        "a wrong token is refused"
    );
    browser.fill("input[name=token]", TOKEN).await;
    browser.click("form#login button").await;
    browser.find("table#lanes").await;
}

#[tokio::test]
async fn an_operator_logs_in_sees_the_counts_finds_a_booking_and_replays_a_dead_letter() {
    let Some(browser) = Browser::start("the dashboard's browser test", 1280, 1000).await else {
        return;
    };
    let (mut s, sent_id, dead_ids) = settled_scenario().await;
    let dashboard = DashboardProcess::start(&s.redis.url(), NAMESPACE, TOKEN, &[]).await;
    let base = dashboard.base_url();
    log_in(&browser, &base).await;

    // The overview's counts are `status --json`'s.
    let status = status_json(&s);
    for lane in ["otp", "booking", "reminder", "bulk"] {
        for count in [
            "ready",
            "pending",
            "delayed",
            "scheduled",
            "cancelled",
            "dead",
            "sent",
        ] {
            let shown = browser
                .text(&format!("tr[data-lane={lane}] td[data-count={count}]"))
                .await;
            assert_eq!(
                shown,
                status["lanes"][lane][count].to_string(),
                "{lane} {count} on the overview vs status --json: {status}"
            );
        }
    }
    assert_eq!(
        browser
            .text("tr[data-lane=total] td[data-count=dead]")
            .await,
        status["dead"].to_string()
    );
    // Tenants with ready jobs (reminders, apart from the bookings below): the overview
    // lists them as `status --json` does, largest first.
    assert_eq!(browser.count("p#no-tenants").await, 1);
    let reminder = |i: usize, tenant: &str| {
        format!(
            r#"{{"kind":"reminder","phone":"+9197000000{i:02}","booking_id":"R{i}","service":"Haircut","date":"2030-11-24","time":"10:30","tenant":"{tenant}"}}"#
        )
    };
    s.enqueue_lines(&[
        reminder(1, "salon-x"),
        reminder(2, "salon-x"),
        reminder(3, "salon-y"),
    ]);
    browser
        .client
        .goto(&base)
        .await
        .expect("reload the overview");
    browser.find("table#tenants").await;
    for (tenant, ready) in [("salon-x", "2"), ("salon-y", "1")] {
        let shown = browser
            .text(&format!(
                "tr[data-tenant=\"{tenant}\"][data-lane=reminder] td[data-count=ready]"
            ))
            .await;
        assert_eq!(shown, ready, "{tenant}");
    }
    let tenants = status_json(&s)["tenants"].clone();
    assert_eq!(tenants[0]["tenant"], "salon-x", "{tenants}");
    // The charts draw the worker's history: three requests in the last hour.
    let caption = browser.text("figure.chart figcaption").await;
    assert!(
        caption.contains("requests 3"),
        "{caption}: {}",
        browser.client.source().await.unwrap()
    );

    // Find a job by its booking id.
    browser.click("nav a[href='/jobs']").await;
    browser.fill("form#find input[name=q]", "B-OK").await;
    browser
        .find("form#find select[name=by]")
        .await
        .select_by_value("booking_id")
        .await
        .unwrap();
    browser.click("form#find button").await;
    let found = browser
        .text(&format!("section.timeline[data-job='{sent_id}']"))
        .await;
    assert!(found.contains("found by booking id"), "{found}");
    assert_eq!(
        browser
            .text(&format!("section.timeline[data-job='{sent_id}'] .state"))
            .await,
        "sent"
    );

    // A forged POST (the session's cookie, no CSRF token) is refused and changes nothing.
    let cookie = format!("herald_session={}", browser.cookie("herald_session").await);
    let (code, _) = http_request(
        "POST",
        &format!("{base}/actions/replay"),
        &[
            ("Cookie", &cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        "scope=all&confirm=yes",
    )
    .await
    .expect("the dashboard answers");
    assert_eq!(code, 403, "a POST without the CSRF token");
    let (code, _) = http_request(
        "POST",
        &format!("{base}/actions/replay"),
        &[
            ("Cookie", &cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        "scope=all&confirm=yes&csrf=0000",
    )
    .await
    .expect("the dashboard answers");
    assert_eq!(code, 403, "a POST with a wrong CSRF token");
    assert_eq!(s.status().await.total.dead, 2, "nothing was replayed");

    // Replay one dead letter with clicks: the preview says what it will do, then it is done.
    let target = &dead_ids[0];
    browser.click("nav a[href='/dead']").await;
    assert_eq!(browser.count("table#dead > tbody > tr").await, 2);
    browser
        .click(&format!("button[data-replay='{target}']"))
        .await;
    let preview = browser.text("pre.report").await;
    assert!(preview.contains("would replay 1 of 1"), "{preview}");
    assert!(
        browser
            .text("#preview")
            .await
            .contains("Nothing has changed yet")
    );
    assert_eq!(s.status().await.total.dead, 2, "a preview changes nothing");
    browser.click("form#confirm button").await;
    let result = browser.text("pre.report").await;
    assert!(result.contains("replayed 1 of 1"), "{result}");

    // Back on its lane, as `status --json` and the overview say.
    let status = status_json(&s);
    assert_eq!(status["lanes"]["booking"]["ready"], 1, "{status}");
    assert_eq!(status["lanes"]["booking"]["dead"], 1, "{status}");
    let lane = s.lane_jobs(herald_shared::Lane::Booking).await;
    assert_eq!(lane.len(), 1);
    assert_eq!(&lane[0].id.to_string(), target);
    browser.click("nav a[href='/']").await;
    assert_eq!(
        browser
            .text("tr[data-lane=booking] td[data-count=ready]")
            .await,
        "1"
    );

    // Cancel a queued job with clicks: found by its id, previewed, then cancelled for good.
    let queued = enqueue_booking(&s, "+919000000011", "B-LATER");
    browser.click("nav a[href='/jobs']").await;
    browser.fill("form#find input[name=q]", &queued).await;
    browser.click("form#find button").await;
    browser
        .click(&format!(
            "section.timeline[data-job='{queued}'] form.cancel button"
        ))
        .await;
    assert!(
        browser
            .text("#preview")
            .await
            .contains("Nothing has changed yet")
    );
    assert_eq!(
        status_json(&s)["lanes"]["booking"]["ready"],
        2,
        "a preview changes nothing"
    );
    browser.click("form#confirm button").await;
    let result = browser.text("pre.report").await;
    assert!(
        result.contains("cancelled: it will never be sent"),
        "{result}"
    );
    let status = status_json(&s);
    assert_eq!(status["lanes"]["booking"]["ready"], 1, "{status}");
    assert_eq!(status["lanes"]["booking"]["cancelled"], 1, "{status}");
    assert!(
        !dashboard.log().contains(TOKEN),
        "the token is never logged: {}",
        dashboard.log()
    );
}

#[tokio::test]
async fn a_read_only_dashboard_shows_no_action_and_refuses_one() {
    let Some(browser) = Browser::start("the dashboard's read-only test", 1280, 1000).await else {
        return;
    };
    let (s, _, dead_ids) = settled_scenario().await;
    let dashboard =
        DashboardProcess::start(&s.redis.url(), NAMESPACE, TOKEN, &["--read-only"]).await;
    let base = dashboard.base_url();
    log_in(&browser, &base).await;
    assert_eq!(browser.text("#read-only").await, "read-only");

    browser.click("nav a[href='/dead']").await;
    assert_eq!(
        browser.count("table#dead > tbody > tr").await,
        2,
        "everything is shown"
    );
    assert_eq!(browser.count("button.replay").await, 0, "no replay button");
    assert_eq!(browser.count("section.actions").await, 0, "no action form");
    goto_dead_letter(&browser, &base, &dead_ids[0]).await;
    assert_eq!(browser.count("button.replay").await, 0);

    // Even with a valid session and CSRF token, an action is refused and changes nothing.
    let csrf = browser
        .find("form.logout input[name=csrf]")
        .await
        .attr("value")
        .await
        .unwrap()
        .expect("the logout form's CSRF token");
    let cookie = format!("herald_session={}", browser.cookie("herald_session").await);
    let (code, body) = http_request(
        "POST",
        &format!("{base}/actions/replay"),
        &[
            ("Cookie", &cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &format!("scope=all&confirm=yes&csrf={csrf}"),
    )
    .await
    .expect("the dashboard answers");
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("read-only"), "{body}");
    assert_eq!(s.status().await.total.dead, 2, "nothing was replayed");
}

async fn goto_dead_letter(browser: &Browser, base: &str, id: &str) {
    browser
        .client
        .goto(&format!("{base}/dead/{id}"))
        .await
        .expect("open the dead letter");
    assert!(browser.text("h1").await.contains(id));
}

/// Regenerates `docs/dashboard-overview.png` and `docs/dashboard-dead-letters.png` from a
/// real run of the demo:
/// `cargo test -p herald-tests --test dashboard -- --ignored screenshots --nocapture`.
#[tokio::test]
#[ignore = "writes the operations page's screenshots; run by hand"]
async fn screenshots_of_the_demo() {
    let Some(browser) = Browser::start("the dashboard screenshots", 1280, 1500).await else {
        return;
    };
    use std::io::{BufRead, BufReader};
    let mut demo = Command::new(cargo_bin("herald-demo"))
        .args(["--keep", "--json"])
        .env_remove("REDIS_URL")
        .env_remove("HERALD_NAMESPACE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the demo");
    // Its first line on stderr names the dashboard and the token.
    let mut stderr = BufReader::new(demo.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("the dashboard's address in {line:?}"))
        .to_string();
    let token = line
        .split_whitespace()
        .find(|w| w.starts_with("demo-"))
        .unwrap()
        .trim_end_matches(')')
        .to_string();
    std::thread::spawn(move || for _ in stderr.lines() {});

    browser.client.goto(&url).await.unwrap();
    browser.fill("input[name=token]", &token).await;
    browser.click("form#login button").await;
    // Mid-run: replicas live, the charts filling.
    wait_until("half the demo sent", Duration::from_secs(60), || async {
        browser.client.refresh().await.is_ok()
            && browser
                .text("tr[data-lane=total] td[data-count=sent]")
                .await
                .parse::<u64>()
                .is_ok_and(|n| n >= 50)
    })
    .await;
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(
        docs.join("dashboard-overview.png"),
        browser.screenshot().await,
    )
    .unwrap();

    let out = demo.wait_with_output().expect("the demo ends");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("its summary");
    browser.client.goto(&format!("{url}/dead")).await.unwrap();
    browser.client.set_window_size(1500, 900).await.unwrap();
    // One letter's attempt history open.
    browser
        .click("table#dead > tbody > tr:nth-child(2) details summary")
        .await;
    std::fs::write(
        docs.join("dashboard-dead-letters.png"),
        browser.screenshot().await,
    )
    .unwrap();
    for pid in [&summary["dashboard_pid"], &summary["redis_pid"]] {
        if let Some(pid) = pid.as_u64() {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    }
    eprintln!("wrote {}", docs.display());
}
