//! Locating workspace binaries for tests that run real processes.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

/// Serializes the fallback builds below between tests of one binary.
static BUILD: Mutex<()> = Mutex::new(());

/// The path of workspace binary `name` (e.g. `herald-worker`), built with the same profile
/// as the running test.
///
/// `cargo test --workspace` builds every binary before any test runs, so the binary is
/// normally already next to the test executable; when a suite runs alone (`cargo test -p
/// herald-tests`), it is built here once.
pub fn cargo_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current test executable");
    // target/<profile>/deps/<test> -> target/<profile>/
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .to_path_buf();
    let path = profile_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    if !path.exists() {
        let release = profile_dir.file_name().is_some_and(|p| p == "release");
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.args(["build", "--bin", name]);
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "cargo build --bin {name} failed");
    }
    assert!(
        path.exists(),
        "{} not found after building it",
        path.display()
    );
    path
}
