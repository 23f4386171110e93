//! The alert rules and the Grafana dashboard in `deploy/`, checked by Prometheus's own tool:
//! `promtool check rules` and `promtool test rules` (the unit tests of every rule, in
//! `deploy/prometheus/alerts.test.yml`) pass; every alert has a unit test, a severity and a
//! runbook paragraph in `docs/alerts.md` that its `runbook_url` points at; every dashboard
//! query is valid PromQL and uses the dashboard's datasource variable.
//!
//! Whether the metrics they name exist is tests/tests/metrics.rs's part (a real /metrics
//! page). `promtool` is Debian's `prometheus` package; without it the test is skipped
//! locally, saying so, and fails with `CI=true`.

use std::process::Command;

use herald_tests::observability::{
    alert_rules, dashboard, dashboard_panels, dashboard_queries, repo_root,
};
use herald_tests::require_tool;

/// Runs promtool with `args` in `deploy/prometheus`; its output when it fails.
fn promtool(args: &[&str], dir: &std::path::Path) -> Result<String, String> {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

/// A heading's anchor as GitHub makes it: lower case, spaces to dashes, punctuation dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn the_alert_rules_pass_promtool_check_and_their_unit_tests() {
    if !require_tool("promtool", "prometheus", "the alert rules' tests") {
        return;
    }
    let dir = repo_root().join("deploy/prometheus");
    let checked = promtool(&["check", "rules", "alerts.yml"], &dir);
    assert!(
        checked.is_ok(),
        "promtool check rules:\n{}",
        checked.unwrap_err()
    );
    let tested = promtool(&["test", "rules", "alerts.test.yml"], &dir);
    assert!(
        tested.is_ok(),
        "promtool test rules:\n{}",
        tested.unwrap_err()
    );
}

#[test]
fn every_alert_has_a_unit_test_a_severity_and_a_runbook_paragraph() {
    let rules = alert_rules();
    assert!(rules.len() >= 8, "only {} alert rules read", rules.len());
    let root = repo_root();
    let tests = std::fs::read_to_string(root.join("deploy/prometheus/alerts.test.yml"))
        .expect("read alerts.test.yml");
    let runbooks =
        std::fs::read_to_string(root.join("docs/alerts.md")).expect("read docs/alerts.md");
    let anchors: Vec<String> = runbooks
        .lines()
        .filter_map(|line| {
            line.strip_prefix("## ")
                .or_else(|| line.strip_prefix("### "))
        })
        .map(anchor)
        .collect();
    let rules_text = std::fs::read_to_string(root.join("deploy/prometheus/alerts.yml")).unwrap();
    let mut problems = Vec::new();
    for rule in &rules {
        let name = &rule.name;
        // A firing case: an exp_alerts list that is not empty, under this alert's name.
        let fires = tests
            .split("alertname: ")
            .skip(1)
            .any(|case| case.starts_with(&format!("{name}\n")) && case.contains("exp_labels"));
        if !fires {
            problems.push(format!(
                "{name}: no unit test where it fires (alerts.test.yml)"
            ));
        }
        let quiet = tests.split("alertname: ").skip(1).any(|case| {
            case.starts_with(&format!("{name}\n"))
                && case
                    .trim_start_matches(name)
                    .trim_start()
                    .starts_with("exp_alerts: []")
        });
        if !quiet {
            problems.push(format!(
                "{name}: no unit test where it must not fire (alerts.test.yml)"
            ));
        }
        let section = rules_text
            .split("- alert: ")
            .find(|s| s.starts_with(&format!("{name}\n")))
            .unwrap_or_default();
        if !(section.contains("severity: warning") || section.contains("severity: critical")) {
            problems.push(format!("{name}: no severity label (warning or critical)"));
        }
        let want = format!(
            "https://github.com/herald-messaging/herald/blob/main/docs/alerts.md#{}",
            anchor(name)
        );
        match &rule.runbook_url {
            Some(url) if *url == want => {}
            other => problems.push(format!("{name}: runbook_url {other:?}, expected {want}")),
        }
        if !anchors.contains(&anchor(name)) {
            problems.push(format!("{name}: docs/alerts.md has no heading `## {name}`"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_dashboard_query_is_valid_promql_on_the_datasource_variable() {
    let board = dashboard();
    assert_eq!(board["uid"], "herald");
    let queries = dashboard_queries(&board);
    assert!(queries.len() >= 20, "only {} queries read", queries.len());
    let mut problems = Vec::new();
    let mut ids = std::collections::BTreeSet::new();
    for panel in dashboard_panels(&board) {
        let title = panel["title"].as_str().unwrap_or("?");
        if !ids.insert(panel["id"].as_u64()) {
            problems.push(format!("panel {title:?}: id {} given twice", panel["id"]));
        }
        if panel["type"] != "row" && panel["datasource"]["uid"] != "${datasource}" {
            problems.push(format!(
                "panel {title:?}: datasource is not ${{datasource}}"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    if !require_tool("promtool", "prometheus", "the dashboard's PromQL check") {
        return;
    }
    // Each query as a recording rule, Grafana's variables given values, for promtool to parse.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, query) in queries.iter().enumerate() {
        let expr = query
            .expr
            .replace("$__rate_interval", "1m")
            .replace("$__interval", "1m")
            .replace("$__range", "1h");
        assert!(
            !expr.contains('$'),
            "{}: an unknown Grafana variable in {expr}",
            query.source
        );
        rules.push_str(&format!(
            "      - record: dashboard:query_{i}\n        expr: {}\n",
            serde_json::to_string(&expr).unwrap()
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dashboard.yml"), rules).unwrap();
    let checked = promtool(&["check", "rules", "dashboard.yml"], dir.path());
    assert!(
        checked.is_ok(),
        "the dashboard's queries as rules, promtool check rules:\n{}",
        checked.unwrap_err()
    );
}
