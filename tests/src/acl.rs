//! The minimal ACL users docs/redis.md gives (`ACL SETUSER herald ...` for the data nodes,
//! `ACL SETUSER herald-sentinel ...` for the Sentinels), read from that page itself so that
//! the documentation and the tests cannot drift apart. (The functions keep their `readme_`
//! names from when the README held the page.)

use std::path::Path;
use std::process::Command;

/// The `ACL SETUSER herald ...` line of docs/redis.md, split into redis-cli arguments, with
/// `password` in place of the page's `CHANGE-ME`. Its key pattern is `~{herald}:*`: the
/// namespace `herald`.
pub fn readme_acl(password: &str) -> Vec<String> {
    let line = readme_line("ACL SETUSER herald ", password);
    assert!(
        line.iter().any(|w| w == "~{herald}:*") && line.iter().any(|w| w == "-@all"),
        "{line:?}"
    );
    line
}

/// The `ACL SETUSER herald-sentinel ...` line of docs/redis.md (the user Herald asks the
/// Sentinels as), split into redis-cli arguments, with `password` for `CHANGE-ME`.
pub fn readme_sentinel_acl(password: &str) -> Vec<String> {
    let line = readme_line("ACL SETUSER herald-sentinel ", password);
    assert!(line.iter().any(|w| w == "-@all"), "{line:?}");
    line
}

fn readme_line(prefix: &str, password: &str) -> Vec<String> {
    let page = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/redis.md");
    let text = std::fs::read_to_string(page).expect("read docs/redis.md");
    let line = text
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("docs/redis.md gives the ACL line ({prefix}...)"));
    line.split_whitespace()
        .map(|word| match word {
            ">CHANGE-ME" => format!(">{password}"),
            other => other.to_string(),
        })
        .collect()
}

/// Creates docs/redis.md's user on the server at `port`; its URL is
/// `redis://herald:PASSWORD@127.0.0.1:PORT`.
pub fn create_readme_user(port: u16, password: &str) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(readme_acl(password))
        .output()
        .expect("run redis-cli");
    let answer = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(answer, "OK", "ACL SETUSER: {out:?}");
    format!("redis://herald:{password}@127.0.0.1:{port}")
}
