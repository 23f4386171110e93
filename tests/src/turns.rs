//! Turns between the scenarios of a test run: side by side, or alone.
//!
//! Scenarios run side by side (a shared turn), except the ones that measure requests per
//! window, which run alone (an exclusive turn): on a two-core machine a neighbour's CPU
//! burst would otherwise be measured as the worker's jitter. A turn is a lock (`flock`) on
//! one file in the target directory, so turns hold across every test process of a run: the
//! threads of one suite (`cargo test`) and the one process per test of `cargo nextest run`
//! alike. The lock goes with the file: dropped with its scenario, or with its process
//! however that ends (a test killed mid-run leaves no lock behind).
//!
//! `flock` prefers no one: shared turns taken one after another would keep an exclusive
//! one waiting until no scenario is left. So a second file is the gate every turn passes:
//! an exclusive turn holds it while it waits, and the shared turns that come meanwhile wait
//! at the gate, behind it.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// A scenario's turn, held while the scenario lives.
pub struct Turn {
    _lock: File,
}

impl Turn {
    /// A turn beside other shared ones.
    pub async fn shared() -> Turn {
        Turn::take(false).await
    }

    /// A turn alone: no other scenario of the run holds one meanwhile.
    pub async fn exclusive() -> Turn {
        Turn::take(true).await
    }

    async fn take(exclusive: bool) -> Turn {
        tokio::task::spawn_blocking(move || {
            // The gate is held only until the turn is taken.
            let gate = lock(&lock_path("herald-scenario-gate.lock"), exclusive);
            let turn = lock(&lock_path("herald-scenario-turns.lock"), exclusive);
            drop(gate);
            Turn { _lock: turn }
        })
        .await
        .expect("the task taking a turn")
    }
}

/// `path` opened and locked, exclusive or shared (blocking until it is).
fn lock(path: &Path, exclusive: bool) -> File {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap_or_else(|err| panic!("open {}: {err}", path.display()));
    let locked = if exclusive {
        file.lock()
    } else {
        file.lock_shared()
    };
    locked.unwrap_or_else(|err| panic!("lock {}: {err}", path.display()));
    file
}

/// `target/<profile>/<name>`, beside the binaries the scenarios run.
fn lock_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current test executable");
    // target/<profile>/deps/<test> -> target/<profile>/
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .join(name)
}
