//! Every command's `--help` documents its exit codes.
//!
//! Walks every binary of the workspace (from `cargo metadata`, so a new binary is walked
//! too) and, recursively, every subcommand its `--help` lists under `Commands:`, running
//! the real binary each time. A new subcommand without an `Exit codes:` section fails here,
//! and so does one whose `--help` mixes the Redis connection flags (`RedisArgs`) into its own
//! instead of listing them apart, under their heading, after its own.

use std::collections::BTreeSet;
use std::process::Command;

use clap::Args;
use herald_shared::config::{REDIS_HELP_HEADING, RedisArgs};
use herald_tests::cargo_bin;

/// The names of the workspace's binaries, as `cargo metadata` reports them.
fn workspace_binaries() -> BTreeSet<String> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata json");
    let mut bins = BTreeSet::new();
    for package in metadata["packages"].as_array().expect("packages") {
        for target in package["targets"].as_array().expect("targets") {
            let is_bin = target["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| k == "bin"));
            if is_bin {
                bins.insert(target["name"].as_str().expect("a name").to_string());
            }
        }
    }
    bins
}

/// The subcommands listed under `Commands:` in `help`, without clap's own `help`.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| line.trim_end() != "Commands:")
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        // An entry is indented two spaces; a wrapped description, more.
        .filter(|line| line.starts_with("  ") && !line.starts_with("   "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// The long flags of the Redis connection (`--redis-url`, ..., `--namespace`).
fn redis_flags() -> BTreeSet<String> {
    RedisArgs::augment_args(clap::Command::new("x"))
        .get_arguments()
        .filter_map(|arg| arg.get_long())
        .map(|long| format!("--{long}"))
        .collect()
}

/// The long flag a line of `--help` lists (`      --redis-url <URL>  ...`, `  -h, --help`),
/// `None` for any other line (a description, a heading).
fn listed_flag(line: &str) -> Option<&str> {
    let entry = line
        .strip_prefix("      ")
        .or_else(|| line.strip_prefix("  ").filter(|l| l.starts_with('-')))?;
    let entry = entry.split(", ").last()?;
    entry
        .starts_with("--")
        .then(|| entry.split([' ', '=']).next())?
}

/// What is wrong with where `help` lists the Redis connection flags: each must come under
/// its heading, which lists nothing else and comes after the command's own flags.
fn redis_flags_misplaced(help: &str, redis: &BTreeSet<String>) -> Vec<String> {
    let heading = format!("{REDIS_HELP_HEADING}:");
    let mut problems = Vec::new();
    let (mut section, mut seen_heading) = (String::new(), false);
    for line in help.lines() {
        if !line.starts_with(' ') && line.ends_with(':') {
            section = line.to_string();
            seen_heading |= section == heading;
            continue;
        }
        let Some(flag) = listed_flag(line) else {
            continue;
        };
        match (redis.contains(flag), section == heading) {
            (true, false) => problems.push(format!("{flag} listed under {section:?}")),
            (false, true) => problems.push(format!("{flag} listed under {heading:?}")),
            (false, false) if seen_heading => {
                problems.push(format!("{flag} listed after {heading:?}"))
            }
            _ => {}
        }
    }
    if help.contains("--redis-url") && !seen_heading {
        problems.push(format!("no {heading:?} heading"));
    }
    problems
}

/// Runs `binary PATH... --help`, checks it, and walks its subcommands; returns every
/// command it checked.
fn walk(
    binary: &str,
    path: &mut Vec<String>,
    checked: &mut Vec<String>,
    missing: &mut Vec<String>,
) {
    let out = Command::new(cargo_bin(binary))
        .args(path.iter())
        .arg("--help")
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .output()
        .expect("run --help");
    let command = format!("{binary} {}", path.join(" "));
    let help = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{command} --help: {help}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if !help.contains("Exit codes:") {
        missing.push(command.trim_end().to_string());
    }
    for problem in redis_flags_misplaced(&help, &redis_flags()) {
        missing.push(format!("{}: {problem}", command.trim_end()));
    }
    checked.push(command.trim_end().to_string());
    for sub in subcommands(&help) {
        path.push(sub);
        walk(binary, path, checked, missing);
        path.pop();
    }
}

#[test]
fn every_commands_help_lists_its_exit_codes() {
    let binaries = workspace_binaries();
    for expected in [
        "herald-worker",
        "herald-webhook",
        "herald-producer",
        "herald-sandbox",
        "herald-demo",
        "herald-dashboard",
    ] {
        assert!(binaries.contains(expected), "{expected} in {binaries:?}");
    }
    // Built first: `herald-worker demo --help` hands over to the herald-demo next to it.
    for binary in &binaries {
        cargo_bin(binary);
    }
    let (mut checked, mut missing) = (Vec::new(), Vec::new());
    for binary in &binaries {
        walk(binary, &mut Vec::new(), &mut checked, &mut missing);
    }
    // The walk found the subcommands (a change to clap's layout must not make it vacuous).
    for command in [
        "herald-worker run",
        "herald-worker dlq replay",
        "herald-worker demo",
        "herald-worker dashboard",
        "herald-producer serve",
        "herald-producer bulk",
    ] {
        assert!(
            checked.iter().any(|c| c == command),
            "{command} in {checked:?}"
        );
    }
    assert!(
        missing.is_empty(),
        "--help without \"Exit codes:\", or with the Redis flags out of place: {missing:?} \
         (checked {checked:?})"
    );
}

#[test]
fn redis_flags_must_come_apart_under_their_heading() {
    let redis = redis_flags();
    assert!(redis.contains("--redis-url") && redis.contains("--namespace"));
    let good = "Usage: x\n\nOptions:\n      --phone <PHONE>  Recipient\n  -h, --help  Print help\n\nRedis connection:\n      --redis-url <REDIS_URL>\n          Redis URL [env: REDIS_URL]\n      --namespace <NAMESPACE>\n\nExit codes:\n  0  done\n";
    assert_eq!(redis_flags_misplaced(good, &redis), Vec::<String>::new());
    let mixed =
        "Options:\n      --phone <PHONE>\n      --redis-url <REDIS_URL>\n      --code <CODE>\n";
    assert_eq!(
        redis_flags_misplaced(mixed, &redis),
        [
            "--redis-url listed under \"Options:\"",
            "no \"Redis connection:\" heading"
        ]
    );
    let after =
        "Options:\n  -h, --help\n\nRedis connection:\n      --redis-url <URL>\n      --tz <TZ>\n";
    assert_eq!(
        redis_flags_misplaced(after, &redis),
        ["--tz listed under \"Redis connection:\""]
    );
}

#[test]
fn subcommands_are_read_from_the_commands_list() {
    let help = "Usage: x <COMMAND>\n\nCommands:\n  run      Run one replica\n  dlq      Dead letters, with a description\n           that wraps\n  help     Print this message\n\nOptions:\n  -h, --help\n";
    assert_eq!(subcommands(help), ["run", "dlq"]);
    assert!(subcommands("Usage: x [OPTIONS]\n\nOptions:\n  -h\n").is_empty());
}
