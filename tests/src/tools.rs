//! External tools a test needs besides Herald's binaries (`node`, `promtool`): present, or
//! a skip that says so locally, or a failure in CI, where a missing tool must never pass as
//! a green test.

use std::process::Command;

/// Whether this run is CI's: `CI` is `true` (or `1`), as CI services set it.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// True when `tool --version` runs. When it does not: in CI ([`in_ci`]) panics, naming the
/// tool and the Debian package that provides it; elsewhere prints `SKIPPED: ...` and
/// returns false, so the caller returns early.
pub fn require_tool(tool: &str, debian_package: &str, test: &str) -> bool {
    if Command::new(tool).arg("--version").output().is_ok() {
        return true;
    }
    assert!(
        !in_ci(),
        "`{tool}` is not installed and CI=true: {test} must run in CI \
         (`.ci/run` installs it: apt-get install -y {debian_package})"
    );
    eprintln!(
        "SKIPPED: `{tool}` is not installed, so {test} did not run \
         (apt-get install -y {debian_package}; with CI=true this is a failure)"
    );
    false
}
