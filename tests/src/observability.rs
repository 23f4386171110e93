//! What Herald's alert rules (`deploy/prometheus/alerts.yml`) and Grafana dashboard
//! (`deploy/grafana/herald.json`) query, read from the files, and what of a query a
//! `/metrics` page must show: the metric names, the label values its selectors match, the
//! labels it aggregates by.
//!
//! A reader for these two files only (the rules' `- alert:` / `expr:` / `runbook_url:`
//! lines, the dashboard's `targets[].expr`), not a YAML or PromQL parser: it never evaluates
//! a query, and `promtool` checks their syntax (tests/tests/prometheus_rules.rs).

use std::path::PathBuf;

/// The repository's root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the repository")
        .to_path_buf()
}

/// One alert rule of `deploy/prometheus/alerts.yml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRule {
    pub name: String,
    pub expr: String,
    pub runbook_url: Option<String>,
}

/// A query and where it comes from (`alert HeraldX`, `panel "Title"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub source: String,
    pub expr: String,
}

/// The alert rules of `deploy/prometheus/alerts.yml`, in order.
pub fn alert_rules() -> Vec<AlertRule> {
    let path = repo_root().join("deploy/prometheus/alerts.yml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("read {}: {err}", path.display()));
    parse_alert_rules(&text)
}

/// Reads `- alert: NAME` entries with their `expr` (one line, or a `|` block) and
/// `runbook_url`.
pub fn parse_alert_rules(text: &str) -> Vec<AlertRule> {
    let lines: Vec<&str> = text.lines().collect();
    let mut rules: Vec<AlertRule> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        if let Some(name) = trimmed.strip_prefix("- alert:") {
            rules.push(AlertRule {
                name: name.trim().to_string(),
                expr: String::new(),
                runbook_url: None,
            });
        } else if let (Some(rule), Some(value)) = (rules.last_mut(), trimmed.strip_prefix("expr:"))
        {
            let value = value.trim();
            if value == "|" || value == ">" {
                let indent = indentation(line);
                let mut block = Vec::new();
                while i + 1 < lines.len()
                    && (lines[i + 1].trim().is_empty() || indentation(lines[i + 1]) > indent)
                {
                    i += 1;
                    block.push(lines[i].trim());
                }
                rule.expr = block.join("\n").trim().to_string();
            } else {
                rule.expr = value.to_string();
            }
        } else if let (Some(rule), Some(value)) =
            (rules.last_mut(), trimmed.strip_prefix("runbook_url:"))
        {
            rule.runbook_url = Some(value.trim().to_string());
        }
        i += 1;
    }
    rules
}

fn indentation(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// The dashboard, parsed.
pub fn dashboard() -> serde_json::Value {
    let path = repo_root().join("deploy/grafana/herald.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("read {}: {err}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// Every panel of the dashboard, those inside collapsed rows included.
pub fn dashboard_panels(dashboard: &serde_json::Value) -> Vec<&serde_json::Value> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        out.push(panel);
        out.extend(panel["panels"].as_array().into_iter().flatten());
    }
    out
}

/// Every query of the dashboard's panels.
pub fn dashboard_queries(dashboard: &serde_json::Value) -> Vec<Query> {
    dashboard_panels(dashboard)
        .into_iter()
        .flat_map(|panel| {
            let title = panel["title"].as_str().unwrap_or("?").to_string();
            panel["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(move |target| {
                    Some(Query {
                        source: format!("panel {title:?}"),
                        expr: target["expr"].as_str()?.to_string(),
                    })
                })
        })
        .collect()
}

/// Every query of the alert rules and of the dashboard.
pub fn all_queries() -> Vec<Query> {
    let mut queries: Vec<Query> = alert_rules()
        .into_iter()
        .map(|rule| Query {
            source: format!("alert {}", rule.name),
            expr: rule.expr,
        })
        .collect();
    queries.extend(dashboard_queries(&dashboard()));
    queries
}

/// Herald's metric names in `expr` (identifiers starting `herald_`), each once, in order.
pub fn metric_names(expr: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (start, _) in expr.match_indices("herald_") {
        let before = expr[..start].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let name: String = expr[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// The exact-match selectors `name{label="value"}` in `expr`: (name, label, value).
pub fn equality_matchers(expr: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for name in metric_names(expr) {
        let open = format!("{name}{{");
        for (start, _) in expr.match_indices(&open) {
            let rest = &expr[start + open.len()..];
            let Some(end) = rest.find('}') else { continue };
            for matcher in rest[..end].split(',') {
                // Only `=`: `!=`, `=~` and `!~` need no value to exist.
                let Some((label, value)) = matcher.split_once('=') else {
                    continue;
                };
                if label.ends_with('!') || value.starts_with('~') {
                    continue;
                }
                out.push((
                    name.clone(),
                    label.trim().to_string(),
                    value.trim().trim_matches('"').to_string(),
                ));
            }
        }
    }
    out
}

/// The labels `expr` aggregates by (`by (a, b)`), without `le` (a histogram's) and `job`
/// and `instance` (Prometheus's own, added at scrape).
pub fn by_labels(expr: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (start, _) in expr.match_indices("by (") {
        let rest = &expr[start + "by (".len()..];
        let Some(end) = rest.find(')') else { continue };
        for label in rest[..end].split(',').map(str::trim) {
            let own = matches!(label, "" | "le" | "job" | "instance");
            if !own && !out.iter().any(|l| l == label) {
                out.push(label.to_string());
            }
        }
    }
    out
}

/// The sample lines of `name` on a Prometheus text page (`name{...} v` or `name v`).
pub fn samples<'a>(page: &'a str, name: &str) -> Vec<&'a str> {
    page.lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .collect()
}

/// What `query` needs that none of `pages` shows: metrics absent, selector values never
/// seen, aggregation labels that none of its metrics carries. Empty when the pages serve it.
pub fn missing_on_pages(query: &Query, pages: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    let names = metric_names(&query.expr);
    if names.is_empty() {
        problems.push(format!("{}: names no herald_ metric", query.source));
    }
    let lines_of =
        |name: &str| -> Vec<&str> { pages.iter().flat_map(|page| samples(page, name)).collect() };
    for name in &names {
        if lines_of(name).is_empty() {
            problems.push(format!("{}: {name} is on no /metrics page", query.source));
        }
    }
    for (name, label, value) in equality_matchers(&query.expr) {
        let wanted = format!("{label}=\"{value}\"");
        if !lines_of(&name).iter().any(|line| line.contains(&wanted)) {
            problems.push(format!("{}: no {name} sample has {wanted}", query.source));
        }
    }
    for label in by_labels(&query.expr) {
        let wanted = format!("{label}=\"");
        let carried = names
            .iter()
            .any(|name| lines_of(name).iter().any(|line| line.contains(&wanted)));
        if !carried {
            problems.push(format!(
                "{}: aggregates by {label}, which none of {names:?} carries",
                query.source
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_read_with_one_line_and_block_expressions() {
        let text = "groups:\n  - name: g\n    rules:\n      - alert: One\n        expr: sum(herald_a_total) > 0\n        annotations:\n          runbook_url: https://x/docs/alerts.md#one\n      - alert: Two\n        expr: |\n          herald_b > 1\n          or\n          herald_c > 2\n        for: 5m\n";
        let rules = parse_alert_rules(text);
        assert_eq!(
            rules,
            vec![
                AlertRule {
                    name: "One".into(),
                    expr: "sum(herald_a_total) > 0".into(),
                    runbook_url: Some("https://x/docs/alerts.md#one".into()),
                },
                AlertRule {
                    name: "Two".into(),
                    expr: "herald_b > 1\nor\nherald_c > 2".into(),
                    runbook_url: None,
                },
            ]
        );
    }

    #[test]
    fn a_query_is_split_into_names_matchers_and_aggregation_labels() {
        let expr = r#"max by (lane) (herald_queue_oldest_age_seconds{lane="otp"}) > 60 or histogram_quantile(0.99, sum by (le, route) (rate(herald_api_request_duration_seconds_bucket[5m]))) + sum(herald_queue_depth{state!="dead",lane="otp"})"#;
        assert_eq!(
            metric_names(expr),
            [
                "herald_queue_oldest_age_seconds",
                "herald_api_request_duration_seconds_bucket",
                "herald_queue_depth"
            ]
        );
        assert_eq!(
            equality_matchers(expr),
            [
                (
                    "herald_queue_oldest_age_seconds".to_string(),
                    "lane".to_string(),
                    "otp".to_string()
                ),
                (
                    "herald_queue_depth".to_string(),
                    "lane".to_string(),
                    "otp".to_string()
                ),
            ]
        );
        assert_eq!(by_labels(expr), ["lane", "route"]);
        assert!(by_labels("sum by (job, instance) (herald_x_total)").is_empty());
    }

    #[test]
    fn a_page_missing_a_metric_a_value_or_a_label_is_named() {
        let page = "# HELP herald_x_total x\nherald_x_total{lane=\"otp\"} 3\nherald_y 1\n";
        let query = |expr: &str| Query {
            source: "test".into(),
            expr: expr.into(),
        };
        assert!(
            missing_on_pages(&query("sum by (lane) (herald_x_total) + herald_y"), &[page])
                .is_empty()
        );
        assert_eq!(
            missing_on_pages(&query("herald_z"), &[page]),
            ["test: herald_z is on no /metrics page"]
        );
        assert_eq!(
            missing_on_pages(&query(r#"herald_x_total{lane="booking"}"#), &[page]),
            ["test: no herald_x_total sample has lane=\"booking\""]
        );
        assert_eq!(
            missing_on_pages(&query("sum by (reason) (herald_x_total)"), &[page]),
            ["test: aggregates by reason, which none of [\"herald_x_total\"] carries"]
        );
        // A name that merely starts like another is not it.
        assert_eq!(
            missing_on_pages(&query("herald_x"), &[page]),
            ["test: herald_x is on no /metrics page"]
        );
    }
}
