//! The dashboard's logins hold against misuse (issue 27): real `herald-dashboard` processes
//! (two replicas where it matters) over loopback, each test with its own redis-server. No
//! browser: plain HTTP requests, from several loopback addresses when a test needs several
//! clients.
//!
//! - `logout_ends_the_session_on_every_replica_at_once`: after `POST /logout`, the old
//!   cookie loads no page and runs no replay preview, on the replica that logged out and on
//!   the other.
//! - `the_eleventh_wrong_login_from_an_address_is_429_and_another_address_still_logs_in`:
//!   failures counted across replicas, `Retry-After`, another client unaffected.
//! - `a_token_or_secret_too_short_is_refused_at_start_with_exit_2`.
//! - `a_session_survives_11_hours_of_use_but_not_12_hours_idle`: time passes by writing the
//!   session's times in Redis back (the dashboard reads them against its clock), no waiting.
//! - `a_cookie_signed_with_a_key_derived_from_the_tokens_is_refused`.

use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use redis::AsyncCommands;
use sha2::{Digest, Sha256};

use herald_store::Keys;
use herald_tests::{DashboardProcess, HttpAnswer, LOOPBACK, RedisServer, cargo_bin, wait_until};

const NAMESPACE: &str = "dashsec";
const TOKEN: &str = "dashboard-security-token";
/// A second client: any 127.x.y.z reaches the dashboard on 127.0.0.1.
const OTHER_CLIENT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

/// `GET path` with `cookie`, from 127.0.0.1.
async fn get(dashboard: &DashboardProcess, path: &str, cookie: &str) -> HttpAnswer {
    dashboard
        .request(LOOPBACK, "GET", path, &[("Cookie", cookie)], "")
        .await
}

/// A form `POST path` with `cookie`, from 127.0.0.1.
async fn post(dashboard: &DashboardProcess, path: &str, cookie: &str, form: &str) -> HttpAnswer {
    dashboard
        .request(
            LOOPBACK,
            "POST",
            path,
            &[
                ("Cookie", cookie),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            form,
        )
        .await
}

/// The page is the overview, not the way to the login.
fn is_overview(answer: &HttpAnswer) -> bool {
    answer.status == 200 && answer.body.contains("table id=\"lanes\"")
}

fn to_login(answer: &HttpAnswer) -> bool {
    answer.status == 303 && answer.header("location") == Some("/login")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_the_session_on_every_replica_at_once() {
    let redis = RedisServer::start();
    let one = DashboardProcess::start(&redis.url(), NAMESPACE, TOKEN, &[]).await;
    let two = DashboardProcess::start(&redis.url(), NAMESPACE, TOKEN, &[]).await;
    let cookie = one.log_in(TOKEN).await;
    let page = get(&two, "/", &cookie).await;
    assert!(is_overview(&page), "the other replica accepts it: {page:?}");
    let csrf = page.csrf().expect("the logout form's CSRF token");
    let preview = format!("scope=all&csrf={csrf}");
    let answer = post(&two, "/actions/replay", &cookie, &preview).await;
    assert_eq!(
        answer.status, 200,
        "a replay preview with the session: {answer:?}"
    );

    let answer = post(&one, "/logout", &cookie, &format!("csrf={csrf}")).await;
    assert!(to_login(&answer), "{answer:?}");
    assert!(
        answer
            .header("set-cookie")
            .is_some_and(|c| c.contains("Max-Age=0")),
        "the browser's cookie is cleared: {answer:?}"
    );
    // The old cookie, kept by whoever had it, is refused everywhere.
    for dashboard in [&one, &two] {
        let page = get(dashboard, "/", &cookie).await;
        assert!(to_login(&page), "the overview after logout: {page:?}");
        assert_eq!(get(dashboard, "/live/overview", &cookie).await.status, 401);
        assert!(to_login(&get(dashboard, "/dead", &cookie).await));
        let answer = post(dashboard, "/actions/replay", &cookie, &preview).await;
        assert_eq!(
            answer.status, 403,
            "a replay preview after logout: {answer:?}"
        );
        assert!(answer.body.contains("Log in first"), "{}", answer.body);
    }
    let mut conn = herald_tests::connect(&redis.url()).await.unwrap();
    let sessions: Vec<String> = conn.keys("*dashboard:session:*").await.unwrap();
    assert_eq!(sessions, Vec::<String>::new(), "its record is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_eleventh_wrong_login_from_an_address_is_429_and_another_address_still_logs_in() {
    let redis = RedisServer::start();
    let one = DashboardProcess::start(&redis.url(), NAMESPACE, TOKEN, &[]).await;
    let two = DashboardProcess::start(&redis.url(), NAMESPACE, TOKEN, &[]).await;
    // Ten wrong tokens, across both replicas: each answered 401.
    for i in 0..10 {
        let replica = if i % 2 == 0 { &one } else { &two };
        let answer = replica
            .log_in_from(LOOPBACK, &format!("wrong-guess-{i:04}-abcdef"))
            .await;
        assert_eq!(answer.status, 401, "guess {}: {answer:?}", i + 1);
    }
    // The eleventh is refused without being checked, on either replica, and so is the
    // right token from that address until the window ends.
    for (replica, token) in [(&one, "wrong-guess-0011-abcdef"), (&two, TOKEN)] {
        let answer = replica.log_in_from(LOOPBACK, token).await;
        assert_eq!(answer.status, 429, "{answer:?}");
        let wait: u64 = answer
            .header("retry-after")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("Retry-After in seconds: {answer:?}"));
        assert!((1..=600).contains(&wait), "{wait}");
        assert!(
            answer.body.contains("Too many failed logins"),
            "{}",
            answer.body
        );
        assert_eq!(answer.cookie(), None);
    }
    // Another client logs in as usual.
    let answer = one.log_in_from(OTHER_CLIENT, TOKEN).await;
    assert_eq!(answer.status, 303, "{answer:?}");
    let cookie = answer.cookie().expect("a session cookie");
    assert!(is_overview(&get(&two, "/", &cookie).await));
    for dashboard in [&one, &two] {
        assert!(!dashboard.log().contains(TOKEN), "{}", dashboard.log());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_or_secret_too_short_is_refused_at_start_with_exit_2() {
    let redis = RedisServer::start();
    for (tokens, secret, names) in [
        ("abc", None, "HERALD_DASHBOARD_TOKENS"),
        (
            &format!("{TOKEN},short-token-15c"),
            None,
            "HERALD_DASHBOARD_TOKENS",
        ),
        (TOKEN, Some("not-32-characters"), "HERALD_DASHBOARD_SECRET"),
    ] {
        for (program, args) in [
            ("herald-dashboard", vec![]),
            ("herald-worker", vec!["dashboard"]),
        ] {
            let mut command = Command::new(cargo_bin(program));
            command
                .args(&args)
                .args(["--listen", "127.0.0.1:0"])
                .env("REDIS_URL", redis.url())
                .env("HERALD_NAMESPACE", NAMESPACE)
                .env("HERALD_DASHBOARD_TOKENS", tokens)
                .env_remove("HERALD_DASHBOARD_SECRET");
            if let Some(secret) = secret {
                command.env("HERALD_DASHBOARD_SECRET", secret);
            }
            let out = exits_within_20_s(command).await;
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{program} {tokens}: {stderr}");
            assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
            assert!(stderr.contains(names), "{stderr}");
            assert!(!stderr.contains("short-token-15c") && !stderr.contains("abc\""));
            if let Some(secret) = secret {
                assert!(!stderr.contains(secret), "{stderr}");
            }
        }
    }
}

/// Runs `command` to its exit; one that is still running after 20 s (serving, when it
/// should have refused to start) is killed and the test fails.
async fn exits_within_20_s(mut command: Command) -> std::process::Output {
    /// Kills the child if the wait below panics.
    struct Running(Option<std::process::Child>);
    impl Drop for Running {
        fn drop(&mut self) {
            if let Some(child) = &mut self.0 {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start it");
    let mut running = Running(Some(child));
    wait_until("the process to exit", Duration::from_secs(20), || {
        let exited = running.0.as_mut().unwrap().try_wait().unwrap().is_some();
        async move { exited }
    })
    .await;
    running.0.take().unwrap().wait_with_output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_survives_11_hours_of_use_but_not_12_hours_idle() {
    let redis = RedisServer::start();
    let dashboard = DashboardProcess::start(&redis.url(), NAMESPACE, TOKEN, &[]).await;
    let mut conn = herald_tests::connect(&redis.url()).await.unwrap();
    let cookie = dashboard.log_in(TOKEN).await;
    let record = {
        let ids: Vec<String> = conn.keys("*dashboard:session:*").await.unwrap();
        assert_eq!(ids.len(), 1, "{ids:?}");
        ids[0].clone()
    };
    let hour = 3600;
    // Time passes for the session: its times are moved back, as if written earlier.
    let now = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let mut set_times = async |began_ago: u64, used_ago: u64| {
        let t = now();
        let () = conn
            .hset_multiple(
                &record,
                &[("created", t - began_ago), ("seen", t - used_ago)],
            )
            .await
            .unwrap();
    };
    // Eleven hours of use, a page an hour: alive at every one.
    for hours in 1..=11 {
        set_times(hours * hour, hour).await;
        let page = get(&dashboard, "/", &cookie).await;
        assert!(is_overview(&page), "after {hours} h of use: {page:?}");
    }
    // Eleven hours and 59 minutes unused: still alive (each use starts the 12 h again).
    set_times(11 * hour, 11 * hour + 59 * 60).await;
    assert!(is_overview(&get(&dashboard, "/", &cookie).await));
    // Twelve hours unused: over, and its record gone.
    set_times(12 * hour, 12 * hour).await;
    assert!(to_login(&get(&dashboard, "/", &cookie).await));
    assert_eq!(get(&dashboard, "/live/overview", &cookie).await.status, 401);
    let exists: bool = conn.exists(&record).await.unwrap();
    assert!(!exists);

    // However used, a session ends 24 hours after it began.
    let cookie = dashboard.log_in(TOKEN).await;
    let ids: Vec<String> = conn.keys("*dashboard:session:*").await.unwrap();
    let t = now();
    let () = conn
        .hset_multiple(&ids[0], &[("created", t - 24 * hour), ("seen", t - 60)])
        .await
        .unwrap();
    assert!(to_login(&get(&dashboard, "/", &cookie).await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cookie_signed_with_a_key_derived_from_the_tokens_is_refused() {
    let redis = RedisServer::start();
    let dashboard = DashboardProcess::start(&redis.url(), NAMESPACE, TOKEN, &[]).await;
    // What an attacker with one leaked cookie could test token guesses against, and then
    // sign with: the key the dashboard used to derive from the namespace and the tokens.
    let mut hash = Sha256::new();
    hash.update(b"herald-dashboard-session-v1\0");
    hash.update(NAMESPACE.as_bytes());
    hash.update(Sha256::digest(TOKEN.as_bytes()));
    let derived: [u8; 32] = hash.finalize().into();
    let expiry = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    // Even naming a session that exists.
    let real = dashboard.log_in(TOKEN).await;
    let id = real.split('.').nth(1).unwrap().to_string();
    for nonce in [id, "0123456789abcdef0123456789abcdef".to_string()] {
        let payload = format!("{expiry}.{nonce}");
        let mut mac = Hmac::<Sha256>::new_from_slice(&derived).unwrap();
        mac.update(b"session\0");
        mac.update(payload.as_bytes());
        let mac: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let forged = format!("herald_session={payload}.{mac}");
        let page = get(&dashboard, "/", &forged).await;
        assert!(to_login(&page), "a forged cookie: {page:?}");
    }
    assert!(is_overview(&get(&dashboard, "/", &real).await));
    // The key is the random secret every replica shares, kept in Redis.
    let mut conn = herald_tests::connect(&redis.url()).await.unwrap();
    let secret: Option<String> = conn
        .get(Keys::new(NAMESPACE).unwrap().dashboard_secret())
        .await
        .unwrap();
    assert_eq!(secret.map(|s| s.len()), Some(64));
}
