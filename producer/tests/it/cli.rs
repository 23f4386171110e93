//! The `herald-producer` binary: each subcommand prints exactly the job id; every invalid
//! input exits 2 with one line naming the field and leaves Redis empty; bulk reports bad
//! lines by number and sums up; `serve` says where it listens.

use std::time::{Duration, Instant};

use assert_cmd::Command;
use herald_shared::Lane;
use herald_tests::RedisServer;
use predicates::prelude::*;

use crate::support::{self, dbsize, lane_jobs, tenant_jobs};

/// `herald-producer --redis-url <server>` with no Herald variables from the environment.
fn cli(url: &str) -> Command {
    let mut cmd = Command::cargo_bin("herald-producer").unwrap();
    for var in [
        "REDIS_URL",
        "HERALD_NAMESPACE",
        "HERALD_IDEMPOTENCY_WINDOW",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd.args(["--redis-url", url])
        .timeout(Duration::from_secs(30));
    cmd
}

fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.assert().success().get_output().stdout.clone();
    String::from_utf8(out).unwrap()
}

/// The one job id a single enqueue printed.
fn job_id(stdout: &str) -> uuid::Uuid {
    let id = stdout.strip_suffix('\n').expect("ends with a newline");
    id.parse()
        .unwrap_or_else(|_| panic!("stdout is not a job id: {stdout:?}"))
}

const OTP: [&str; 5] = ["otp", "--phone", "+919999999999", "--code", "123456"];
const BOOKING: [&str; 11] = [
    "booking",
    "--phone",
    "+919999999999",
    "--booking-id",
    "B123",
    "--service",
    "Haircut",
    "--date",
    "2026-11-24",
    "--time",
    "10:30",
];

#[test]
fn each_subcommand_prints_exactly_the_job_id() {
    let server = RedisServer::start();
    let url = server.url();
    let otp = job_id(&stdout_of(cli(&url).args(OTP).args(["--valid-for", "5m"])));
    let booking = job_id(&stdout_of(
        cli(&url)
            .args(BOOKING)
            .args(["--image-url", "https://example.com/salon.png"]),
    ));
    let file = support::fixture_path("request-template-carousel.json");
    let send = job_id(&stdout_of(cli(&url).args(["send", "--file", &file])));
    let stdin = job_id(&stdout_of(
        cli(&url)
            .args(["send", "--file", "-"])
            .write_stdin(support::fixture("request-standalone-carousel.json")),
    ));

    let otps = lane_jobs(&server, Lane::Otp);
    assert_eq!(otps.len(), 1);
    assert_eq!(otps[0].id, otp);
    assert_eq!(
        otps[0].not_after,
        Some(otps[0].created_at + Duration::from_secs(300))
    );
    let ids: Vec<_> = lane_jobs(&server, Lane::Booking)
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(ids, [booking, send, stdin]);
}

#[test]
fn phone_flags_take_spaces_and_dashes_and_jobs_hold_e164() {
    let server = RedisServer::start();
    let url = server.url();
    stdout_of(cli(&url).args(["otp", "--phone", "+91 99999-99999", "--code", "123456"]));
    let mut booking = BOOKING;
    booking[2] = "+91 (99999) 99.999";
    stdout_of(cli(&url).args(booking));
    let phones: Vec<String> = [Lane::Otp, Lane::Booking]
        .into_iter()
        .flat_map(|lane| lane_jobs(&server, lane))
        .map(|job| job.phone())
        .collect();
    assert_eq!(
        phones,
        ["+919999999999", "+919999999999"],
        "otp and booking"
    );
    // Anything else in a number is still refused, naming the flag's field.
    cli(&url)
        .args(["otp", "--phone", "+91 99999 9999x", "--code", "1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("phone"));
}

#[test]
fn a_repeated_idempotency_key_prints_the_first_id_and_adds_nothing() {
    let server = RedisServer::start();
    let url = server.url();
    let key = ["--idempotency-key", "booking:B123:confirmation"];
    let first = stdout_of(cli(&url).args(BOOKING).args(key));
    let again = stdout_of(cli(&url).args(BOOKING).args(key));
    assert_eq!(job_id(&again), job_id(&first));
    assert_eq!(lane_jobs(&server, Lane::Booking).len(), 1);
}

#[test]
fn a_key_reused_for_other_content_exits_2_naming_the_key() {
    let server = RedisServer::start();
    let url = server.url();
    let key = ["--idempotency-key", "login:42"];
    let otp = |code: &'static str| {
        let mut cmd = cli(&url);
        cmd.args(["otp", "--phone", "+919999999999", "--code", code])
            .args(key);
        cmd
    };
    let first = job_id(&stdout_of(&mut otp("731904")));
    assert_eq!(
        job_id(&stdout_of(&mut otp("731904"))),
        first,
        "same content"
    );

    let mut booking = cli(&url);
    booking.args(BOOKING).args(key);
    for mut cmd in [otp("555111"), booking] {
        let output = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(output.stdout.is_empty(), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("herald-producer: idempotency_key: ")
                && stderr.contains("\"login:42\"")
                && stderr.contains(&first.to_string()),
            "{stderr}"
        );
        assert!(!stderr.contains("555111"), "the code leaked: {stderr}");
    }
    let otps = lane_jobs(&server, Lane::Otp);
    assert_eq!(otps.len(), 1);
    assert_eq!(otps[0].id, first);
    assert!(lane_jobs(&server, Lane::Booking).is_empty());
}

/// `--tenant` puts a job on its tenant's stream of its lane; reminders wait in the reminder
/// lane; `send --lane` chooses a raw request's lane.
#[test]
fn tenants_and_lanes_put_each_job_on_its_stream() {
    let server = RedisServer::start();
    let url = server.url();
    let booking = job_id(&stdout_of(
        cli(&url).args(BOOKING).args(["--tenant", "salon-a"]),
    ));
    let mut reminder: Vec<&str> = BOOKING.to_vec();
    reminder[0] = "reminder";
    let reminder = job_id(&stdout_of(cli(&url).args(&reminder)));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("campaign.json");
    std::fs::write(
        &path,
        r#"{"countryCode":"+91","phoneNumber":"9999999999","type":"Template","template":{"name":"offer","languageCode":"en"}}"#,
    )
    .unwrap();
    let campaign = job_id(&stdout_of(cli(&url).args([
        "send",
        "--file",
        path.to_str().unwrap(),
        "--lane",
        "bulk",
        "--tenant",
        "brand:x",
    ])));

    let on = |lane, tenant| -> Vec<uuid::Uuid> {
        tenant_jobs(&server, lane, tenant)
            .iter()
            .map(|j| j.id)
            .collect()
    };
    assert_eq!(on(Lane::Booking, "salon-a"), vec![booking]);
    assert_eq!(
        tenant_jobs(&server, Lane::Booking, "salon-a")[0].tenant(),
        "salon-a"
    );
    assert_eq!(on(Lane::Reminder, "default"), vec![reminder]);
    assert_eq!(on(Lane::Bulk, "brand:x"), vec![campaign]);
    assert!(lane_jobs(&server, Lane::Booking).is_empty());
}

#[test]
fn every_invalid_input_exits_2_with_one_line_naming_the_field_and_leaves_redis_empty() {
    let server = RedisServer::start();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, body: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        path.display().to_string()
    };
    let not_json = write("not.json", "{\"countryCode\": ");
    let bad_shape = write(
        "shape.json",
        r#"{"countryCode":"+91","phoneNumber":"9999999999","type":"SMS"}"#,
    );
    let five_suggestions = write(
        "five.json",
        &support::request_with_suggestions(5).to_string(),
    );
    let template = write(
        "template.json",
        r#"{"countryCode":"+91","phoneNumber":"9999999999","type":"Template","template":{"name":"offer","languageCode":"en"}}"#,
    );
    let unknown_kind = write(
        "kind.jsonl",
        "{\"kind\":\"sms\",\"phone\":\"+919999999999\"}\n",
    );
    let booking_with = |flag: &str, value: &str| {
        let mut args: Vec<String> = BOOKING.iter().map(|s| s.to_string()).collect();
        let at = args.iter().position(|a| a == flag).unwrap();
        args[at + 1] = value.into();
        args
    };
    let strings = |args: &[&str]| args.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let otp_valid_for = |valid_for: &str| {
        strings(&[
            "otp",
            "--phone",
            "+919999999999",
            "--code",
            "1",
            "--valid-for",
            valid_for,
        ])
    };

    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            strings(&["otp", "--phone", "9999999999", "--code", "1"]),
            "phone",
        ),
        (
            strings(&["otp", "--phone", "+91999", "--code", "1"]),
            "phone",
        ),
        (
            strings(&["otp", "--phone", "+919999999999", "--code", "12 34"]),
            "code",
        ),
        (otp_valid_for("0s"), "valid_for"),
        (otp_valid_for("soon"), "--valid-for"),
        (otp_valid_for("100000000y"), "valid_for"),
        (otp_valid_for("25h"), "valid_for"),
        (
            strings(&[
                "otp",
                "--phone",
                "+919999999999",
                "--code",
                "1",
                "--idempotency-key",
                "",
            ]),
            "idempotency_key",
        ),
        (strings(&["otp", "--phone", "+919999999999"]), "--code"),
        (
            strings(&["booking", "--phone", "+919999999999"]),
            "--booking-id",
        ),
        (booking_with("--date", "24/11/2026"), "date"),
        (booking_with("--time", "25:99"), "time"),
        (booking_with("--service", &"x".repeat(31)), "service"),
        (booking_with("--booking-id", " "), "booking_id"),
        (booking_with("--phone", "+1 555"), "phone"),
        (
            [
                booking_with("--time", "10:30"),
                strings(&["--image-url", "ftp://x/y.png"]),
            ]
            .concat(),
            "fileUrl",
        ),
        (strings(&["send", "--file", &not_json]), "not.json"),
        (strings(&["send", "--file", &bad_shape]), "type"),
        (
            strings(&["send", "--file", &five_suggestions]),
            "suggestions",
        ),
        (
            strings(&["send", "--file", "/nonexistent/request.json"]),
            "request.json",
        ),
        (strings(&["send"]), "--file"),
        (
            [
                booking_with("--time", "10:30"),
                strings(&["--tenant", "salon a"]),
            ]
            .concat(),
            "tenant",
        ),
        (
            [
                booking_with("--time", "10:30"),
                strings(&["--tenant", &"t".repeat(65)]),
            ]
            .concat(),
            "tenant",
        ),
        (
            strings(&["send", "--file", &template, "--lane", "urgent"]),
            "--lane",
        ),
        (
            strings(&["send", "--file", &template, "--lane", "otp"]),
            "lane",
        ),
        (strings(&["bulk", &unknown_kind]), "line 1: kind"),
        (
            strings(&[
                "--namespace",
                "a:b",
                "otp",
                "--phone",
                "+919999999999",
                "--code",
                "1",
            ]),
            "HERALD_NAMESPACE",
        ),
        (
            strings(&[
                "--idempotency-window",
                "0s",
                "otp",
                "--phone",
                "+919999999999",
                "--code",
                "1",
            ]),
            "HERALD_IDEMPOTENCY_WINDOW",
        ),
        (strings(&["sms"]), "sms"),
    ];
    for (args, field) in cases {
        let output = cli(&url).args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            output.stdout.is_empty(),
            "{args:?}: stdout {:?}",
            output.stdout
        );
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("herald-producer: "),
            "{args:?}: {stderr}"
        );
        assert!(
            stderr.contains(field),
            "{args:?} should name {field}: {stderr}"
        );
        assert_eq!(dbsize(&server), 0, "{args:?} touched Redis");
    }
}

#[test]
fn bulk_enqueues_good_lines_and_reports_bad_ones_by_number() {
    let server = RedisServer::start();
    let raw = support::fixture("request-curl-example-1.json").replace('\n', "");
    let input = [
        r#"{"kind":"otp","phone":"+919999999999","code":"123456","valid_for":"10m","idempotency_key":"login:1"}"#.to_string(),
        r#"{"kind":"booking","phone":"+919999999999","booking_id":"B1","service":"Haircut","date":"2026-11-24","time":"10:30","image_url":"https://example.com/a.png"}"#.to_string(),
        r#"{"kind":"otp","phone":"12345","code":"1"}"#.to_string(),
        String::new(),
        format!(r#"{{"kind":"raw","request":{raw}}}"#),
        r#"{"kind":"otp","phone":"+919999999999","code":"654321","idempotency_key":"login:1"}"#.to_string(),
        r#"{"kind":"booking","phone":"+919999999999","booking_id":"B2","service":"Haircut","date":"tomorrow","time":"10:30"}"#.to_string(),
        "{not json".to_string(),
        r#"{"kind":"otp","phone":"+919999999999","code":"123456","valid_for":"100000000y"}"#.to_string(),
        r#"{"kind":"otp","phone":"+919999999999","code":"123456","valid_for":"1m","idempotency_key":"login:1"}"#.to_string(),
    ]
    .join("\n");
    let output = cli(&server.url())
        .args(["bulk", "-", "--json"])
        .write_stdin(input)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    // Line 6 reuses line 1's key for another code: rejected, naming the key (never the
    // code); line 10 repeats line 1's content (another valid_for): a duplicate.
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "{\"enqueued\":3,\"duplicates\":1,\"rejected\":5}\n"
    );
    let lines: Vec<_> = stderr.lines().collect();
    assert_eq!(lines.len(), 6, "{stderr}");
    assert!(
        lines[0].starts_with("herald-producer: line 3: phone: "),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with("herald-producer: line 6: idempotency_key: ")
            && lines[1].contains("\"login:1\"")
            && !lines[1].contains("654321"),
        "{stderr}"
    );
    assert!(
        lines[2].starts_with("herald-producer: line 7: date: "),
        "{stderr}"
    );
    assert!(
        lines[3].starts_with("herald-producer: line 8: not JSON"),
        "{stderr}"
    );
    assert!(
        lines[4].starts_with("herald-producer: line 9: valid_for: "),
        "{stderr}"
    );
    assert_eq!(
        lines[5],
        "herald-producer: enqueued 3, duplicates 1, rejected 5"
    );

    let otps = lane_jobs(&server, Lane::Otp);
    assert_eq!(otps.len(), 1);
    assert_eq!(otps[0].idempotency_key.as_deref(), Some("login:1"));
    assert_eq!(lane_jobs(&server, Lane::Booking).len(), 2);
}

#[test]
fn bulk_reads_a_file_across_batches() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.jsonl");
    let lines: Vec<String> = (0..2_345)
        .map(|i| format!(r#"{{"kind":"otp","phone":"+919999999999","code":"{i}"}}"#))
        .collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    cli(&server.url())
        .args(["bulk", path.to_str().unwrap()])
        .assert()
        .code(0)
        .stdout("")
        .stderr("herald-producer: enqueued 2345, duplicates 0, rejected 0\n");
    assert_eq!(lane_jobs(&server, Lane::Otp).len(), 2_345);
}

#[test]
fn unreachable_redis_exits_2_quickly_without_the_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://:hunter2@127.0.0.1:{port}");
    for args in [&OTP[..], &["bulk", "-"][..]] {
        let started = Instant::now();
        let output = cli(&url).args(args).write_stdin("").output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert_eq!(
            stderr,
            format!(
                "herald-producer: cannot reach Redis at redis://***@127.0.0.1:{port}: Connection refused\n"
            )
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
}

#[test]
fn help_never_shows_the_redis_password() {
    for args in [&["--help"][..], &["otp", "--help"][..]] {
        Command::cargo_bin("herald-producer")
            .unwrap()
            .env("REDIS_URL", "redis://:hunter2@127.0.0.1:6379")
            .args(args)
            .assert()
            .success()
            .stdout(
                predicate::str::contains("REDIS_URL")
                    .and(predicate::str::contains("hunter2").not()),
            );
    }
}

#[test]
fn help_documents_the_exit_codes() {
    for args in [&["--help"][..], &["bulk", "--help"][..]] {
        Command::cargo_bin("herald-producer")
            .unwrap()
            .args(args)
            .assert()
            .success()
            .stdout(
                predicate::str::contains("Exit codes:")
                    .and(predicate::str::contains("some lines were rejected")),
            );
    }
}

#[test]
fn serve_says_where_it_listens_so_port_0_can_be_learned() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let server = RedisServer::start();
    let mut child = std::process::Command::new(herald_tests::cargo_bin("herald-producer"))
        .args([
            "--redis-url",
            &server.url(),
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .env("HERALD_API_TOKENS", "a-token-for-this-test")
        .env_remove("HERALD_API_LISTEN")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start herald-producer serve");
    // Its first line, before any request: the address it bound. Read on a thread, so a
    // server that never says it does not hang the test.
    let stderr = BufReader::new(child.stderr.take().expect("its stderr"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(stderr.lines().next());
    });
    let first = rx.recv_timeout(Duration::from_secs(20));
    let Ok(Some(Ok(first))) = first else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("no line on stderr within 20 s: {first:?}");
    };
    let addr: std::net::SocketAddr = first
        .strip_prefix("herald-producer: listening on ")
        .unwrap_or_else(|| panic!("not the listening line: {first:?}"))
        .parse()
        .expect("an address");
    assert_eq!(addr.ip().to_string(), "127.0.0.1");
    assert_ne!(addr.port(), 0, "the bound port, not the one asked for");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let health = runtime.block_on(herald_tests::scenario::http_status(&format!(
        "http://{addr}/healthz"
    )));
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        health,
        Some(200),
        "the API answers on the address it printed"
    );
}
