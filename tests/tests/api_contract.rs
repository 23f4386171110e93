//! The producer API's contract is exact: schemathesis, a third-party OpenAPI fuzzer, reads
//! the document a real `herald-producer serve` publishes and throws generated requests at
//! it, valid and invalid, over real HTTP with a bearer token, Redis behind it. It must find
//! no server error, no schema-valid request rejected, no schema-invalid request accepted,
//! no operation that ignores its authentication, and no answer (status, body or content
//! type) the document does not allow. Duration fields carry the parser's own grammar as
//! their `pattern` (`herald_shared::duration`, where a table tests both directions).
//!
//! The run is bounded (a fixed number of examples per operation and a fixed seed, about
//! 15 s on 2 cores) and repeatable. `tests/api-contract/` holds the pinned version
//! (`requirements.txt`, installed by `install.sh`), the hooks that generate what JSON Schema
//! cannot state (`hooks.py`: valid phone numbers, bounded durations, valid Interakt requests)
//! and the one tuned check (`schemathesis.toml`: a batch is answered item by item).
//!
//! schemathesis is `HERALD_SCHEMATHESIS` (what `install.sh` prints; `.ci/run` sets it), or
//! `schemathesis` on the PATH. Without it the test is skipped, saying so; with `CI=true` it
//! fails instead.

use std::path::Path;
use std::process::Command;

use herald_tests::{ApiProcess, RedisServer, require_tool_installed_by};

const TOKEN: &str = "contract-test-token";
/// Test cases per operation and phase: enough to hit every constraint's edges, few enough
/// for about 15 s on 2 cores.
const EXAMPLES: &str = "50";
const SEED: &str = "20261130";
/// `ignored_auth`: every operation refuses a request without the token or with a wrong one
/// (401), as the document's security scheme says.
const CHECKS: &str = "not_a_server_error,status_code_conformance,response_schema_conformance,\
    content_type_conformance,positive_data_acceptance,negative_data_rejection,ignored_auth";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_the_api_exactly_as_its_openapi_document_says() {
    let schemathesis =
        std::env::var("HERALD_SCHEMATHESIS").unwrap_or_else(|_| "schemathesis".to_string());
    if !require_tool_installed_by(
        &schemathesis,
        "export HERALD_SCHEMATHESIS=$(bash tests/api-contract/install.sh)",
        "the API contract test (schemathesis)",
    ) {
        return;
    }
    let contract = Path::new(env!("CARGO_MANIFEST_DIR")).join("api-contract");
    let redis = RedisServer::start();
    // The OTP guard on (tight limits), so its 429s are checked against the document too.
    let api = ApiProcess::start(
        &redis.url(),
        "contract",
        TOKEN,
        &["--otp-guard", "on", "--otp-per-number", "2/1h"],
    )
    .await;

    // Run from a scratch directory: schemathesis and hypothesis keep caches in the working
    // directory, and a replayed failure from an earlier run would make this one unrepeatable.
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let out = tokio::task::spawn_blocking({
        let scratch = scratch.path().to_path_buf();
        move || {
            Command::new(&schemathesis)
                .arg("--config-file")
                .arg(contract.join("schemathesis.toml"))
                .arg("run")
                .arg(format!("{}/openapi.json", api.base_url()))
                .args(["--header", &format!("Authorization: Bearer {TOKEN}")])
                .args(["--checks", CHECKS])
                .args(["--max-examples", EXAMPLES, "--seed", SEED])
                // One worker: faster on 2 cores (Python's GIL), and clear of a race in
                // hypothesis's lambda descriptions between worker threads ("AST constructor
                // recursion depth mismatch", a runtime error that fails the run).
                .args(["--workers", "1", "--request-timeout", "10"])
                .args(["--generation-database", "none", "--no-color"])
                .env("SCHEMATHESIS_HOOKS", "hooks")
                .env("PYTHONPATH", &contract)
                .current_dir(&scratch)
                .output()
                .expect("run schemathesis")
        }
    })
    .await
    .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found the API off its document (exit {:?}):\n{report}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    // The summary, for whoever runs with --nocapture.
    let summary = report
        .find("SUMMARY")
        .map_or(&report[..], |at| &report[at..]);
    eprintln!("{summary}");
    assert!(
        report.contains("Tested: 9"),
        "every operation was tested:\n{report}"
    );
}
