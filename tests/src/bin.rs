//! Locating workspace binaries for tests that run real processes.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

/// Binaries this test process has already brought up to date. The lock also serializes
/// the builds between a suite's concurrent tests.
static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// In [`BUILT`]: every workspace binary at once.
const ALL: &str = "*";

/// The path of workspace binary `name` (e.g. `herald-worker`), built with the same profile
/// as the running test and up to date with the sources.
///
/// `cargo test -p herald-tests` rebuilds the libraries a suite links, not the binaries it
/// runs, so a suite could otherwise test a stale binary. The first call per binary brings
/// it up to date (a no-op when nothing changed); set `HERALD_TEST_NO_BUILD=1` to skip that
/// and use what is in the target directory.
///
/// In the test profile, the first call builds every workspace binary at once, as
/// `cargo test --workspace` resolves features (`cargo build --workspace --bins --tests`):
/// right after that command's own build it is a no-op, where `cargo build -p NAME` would
/// resolve each package's features apart and compile the dependencies again for each
/// binary. Benchmarks (the release profile) build only the binary they run.
pub fn cargo_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current test executable");
    // target/<profile>/deps/<test> -> target/<profile>/
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .to_path_buf();
    let path = profile_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let skip = std::env::var_os("HERALD_TEST_NO_BUILD").is_some() && path.exists();
    if !skip && !built.iter().any(|b| b == name || b == ALL) {
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        let release = profile_dir.file_name().is_some_and(|p| p == "release");
        if release {
            // Each Herald binary lives in the package of the same name.
            cmd.args([
                "build",
                "--quiet",
                "--release",
                "--package",
                name,
                "--bin",
                name,
            ]);
        } else {
            cmd.args(["build", "--quiet", "--workspace", "--bins", "--tests"]);
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "{cmd:?} failed");
        if release {
            built.push(name.to_string());
        } else {
            built.push(ALL.to_string());
        }
    }
    assert!(
        path.exists(),
        "{} not found after building it",
        path.display()
    );
    path
}
