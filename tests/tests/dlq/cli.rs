//! Bad usage and an unreachable Redis: exit 2, with one line naming the problem.

use std::process::Command;

use herald_tests::cargo_bin;

#[test]
fn usage_errors_and_an_unreachable_redis_exit_2() {
    let cases: [(&[&str], &str); 10] = [
        (&["dlq", "list"], "cannot reach Redis"),
        (&["dlq", "replay", "--all"], "cannot reach Redis"),
        (&["dlq", "replay"], "--all"),
        (
            &["dlq", "replay", "--all", "--reason", "x"],
            "cannot be used with",
        ),
        (&["dlq", "replay", "--all", "--extend", "later"], "--extend"),
        // Bounded: a new deadline at most 24 h out, and never a panic.
        (
            &["dlq", "replay", "--all", "--extend", "100000000y"],
            "--extend",
        ),
        (&["dlq", "replay", "--all", "--extend", "25h"], "--extend"),
        (
            &["dlq", "purge", "--older-than", "soon", "--yes"],
            "--older-than",
        ),
        (&["dlq", "list", "--lane", "sms"], "sms"),
        (&["dlq", "show"], "<ID>"),
    ];
    for (args, expected) in cases {
        let out = Command::new(cargo_bin("herald-worker"))
            .args(args)
            .env("REDIS_URL", "redis://127.0.0.1:1")
            .output()
            .expect("run herald-worker");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{args:?}: expected {expected:?} in {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{args:?}: one line: {stderr}");
    }
}
