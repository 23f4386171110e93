//! Turns between the scenarios of a test run: side by side, or alone.
//!
//! Scenarios run side by side (a shared turn), except the ones that measure requests per
//! window, which run alone (an exclusive turn): on a two-core machine a neighbour's CPU
//! burst would otherwise be measured as the worker's jitter. A turn is a lock (`flock`) on
//! one file in the target directory, so turns hold across every test process of a run: the
//! threads of one suite (`cargo test`) and the one process per test of `cargo nextest run`
//! alike. The lock goes with the file: dropped with its scenario, or with its process
//! however that ends (a test killed mid-run leaves no lock behind).

use std::fs::{File, OpenOptions};
use std::path::PathBuf;

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
        let path = lock_path();
        tokio::task::spawn_blocking(move || {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .unwrap_or_else(|err| panic!("open {}: {err}", path.display()));
            let locked = if exclusive {
                file.lock()
            } else {
                file.lock_shared()
            };
            locked.unwrap_or_else(|err| panic!("lock {}: {err}", path.display()));
            Turn { _lock: file }
        })
        .await
        .expect("the task taking a turn")
    }
}

/// `target/<profile>/herald-scenario-turns.lock`, beside the binaries the scenarios run.
fn lock_path() -> PathBuf {
    let exe = std::env::current_exe().expect("current test executable");
    // target/<profile>/deps/<test> -> target/<profile>/
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .join("herald-scenario-turns.lock")
}
