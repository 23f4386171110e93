//! External tools a test needs besides Herald's binaries (`node`, `promtool`, `schemathesis`):
//! present, or
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
    require_tool_installed_by(tool, &format!("apt-get install -y {debian_package}"), test)
}

/// [`require_tool`] for a tool that is not a Debian package: `install` says how to get it
/// (e.g. `bash tests/api-contract/install.sh`). `tool` may be a path.
pub fn require_tool_installed_by(tool: &str, install: &str, test: &str) -> bool {
    if Command::new(tool).arg("--version").output().is_ok() {
        return true;
    }
    assert!(
        !in_ci(),
        "`{tool}` is not installed and CI=true: {test} must run in CI \
         (`.ci/run` installs it: {install})"
    );
    eprintln!(
        "SKIPPED: `{tool}` is not installed, so {test} did not run \
         ({install}; with CI=true this is a failure)"
    );
    false
}
