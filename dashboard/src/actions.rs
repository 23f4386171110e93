//! What an operator can do from the dashboard, each in two steps: a preview that changes
//! nothing and says what the action will do (the same plan and text as `herald-worker dlq
//! replay --dry-run` and `dlq purge` without `--yes`), then, confirmed, the action and its
//! result. Both steps are POSTs with the session's CSRF token ([`crate::server`] checks it and
//! read-only mode before anything here runs).
//!
//! The actions are the operator library's ([`DeadLetters::replay`], [`DeadLetters::purge`]):
//! atomic per letter, safe to repeat. Cancelling a queued job is issue 12's: it becomes an
//! [`Action`] variant here, parsed from its own form, with its preview and result rendered
//! like these.

use std::time::Duration;

use herald_operator::dlq::{
    self, DeadLetters, DlqError, Extension, PurgeSelection, ReplayOptions, Selection,
};
use herald_shared::config::parse_duration;
use serde::Deserialize;

/// A replay or purge form as posted.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ActionForm {
    /// The session's CSRF token.
    pub csrf: Option<String>,
    /// Replay: `one` (with `id`), `reason` (with `reason`), `all`.
    pub scope: Option<String>,
    pub id: Option<String>,
    pub reason: Option<String>,
    /// Replay: a new deadline for expired OTPs (`10m`, at most 24h).
    pub extend: Option<String>,
    /// Purge: dead for longer than this (`7d`).
    pub older_than: Option<String>,
    /// Present on the second step: do it.
    pub confirm: Option<String>,
}

/// A bad form: the field and why, for a 400 page.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FormError {
    pub field: &'static str,
    pub reason: String,
}

fn bad(field: &'static str, reason: impl Into<String>) -> FormError {
    FormError {
        field,
        reason: reason.into(),
    }
}

/// An action, parsed from its form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Replay {
        selection: Selection,
        extend: Option<Extension>,
    },
    Purge {
        older_than: Duration,
    },
    // Cancel (issue 12) goes here: a queued or scheduled job by id, previewed with what it
    // would withdraw.
}

/// What the operator sees after either step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// False for the preview: nothing was changed.
    pub done: bool,
    /// The text `dlq` prints for the same request.
    pub report: String,
    /// True when the preview found something to do (the confirm button is shown).
    pub actionable: bool,
}

impl Action {
    pub fn replay(form: &ActionForm) -> Result<Action, FormError> {
        let text = |value: &Option<String>| {
            value
                .as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let selection = match form.scope.as_deref().unwrap_or("one") {
            "one" => Selection::Ids(vec![
                text(&form.id).ok_or_else(|| bad("id", "is required to replay one letter"))?,
            ]),
            "reason" => Selection::Reason(text(&form.reason).ok_or_else(|| {
                bad(
                    "reason",
                    "is required: the text the reasons to replay contain, e.g. HTTP 503",
                )
            })?),
            "all" => Selection::All,
            other => {
                return Err(bad(
                    "scope",
                    format!("{other:?} is not one of one, reason, all"),
                ));
            }
        };
        let extend = text(&form.extend)
            .map(|e| e.parse::<Extension>())
            .transpose()
            .map_err(|err| bad("extend", err.to_string()))?;
        Ok(Action::Replay { selection, extend })
    }

    pub fn purge(form: &ActionForm) -> Result<Action, FormError> {
        let age = form
            .older_than
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| bad("older_than", "is required, e.g. 7d"))?;
        let older_than = parse_duration(age).map_err(|err| bad("older_than", err))?;
        Ok(Action::Purge { older_than })
    }

    /// A title for the pages.
    pub fn describe(&self) -> String {
        match self {
            Action::Replay { selection, extend } => {
                let what = match selection {
                    Selection::All => "every dead letter".to_string(),
                    Selection::Ids(ids) => format!("dead letter {}", ids.join(", ")),
                    Selection::Reason(text) => {
                        format!("dead letters whose reason contains {text:?}")
                    }
                };
                match extend {
                    Some(extend) => format!("Replay {what}, extending deadlines by {extend}"),
                    None => format!("Replay {what}"),
                }
            }
            Action::Purge { older_than } => format!(
                "Purge dead letters dead for longer than {}",
                herald_shared::job::human(*older_than)
            ),
        }
    }

    /// Previews (`confirmed` false: nothing changes) or does the action.
    pub async fn run(&self, dead: &DeadLetters, confirmed: bool) -> Result<Outcome, DlqError> {
        match self {
            Action::Replay { selection, extend } => {
                let options = ReplayOptions {
                    extend: *extend,
                    dry_run: !confirmed,
                };
                let report = dead.replay(selection, options, &mut |_, _| {}).await?;
                Ok(Outcome {
                    done: confirmed,
                    actionable: report.replayed.total() > 0,
                    report: dlq::render_replay(&report),
                })
            }
            Action::Purge { older_than } => {
                let report = dead
                    .purge(&PurgeSelection::OlderThan(*older_than), confirmed)
                    .await?;
                let mut text = dlq::render_purge(&report);
                if !confirmed {
                    // The CLI's hint names its flag; here the button below does it.
                    text = text.replace(
                        "nothing was deleted: run again with --yes to delete them",
                        "nothing was deleted yet: confirm below to delete them",
                    );
                }
                Ok(Outcome {
                    done: confirmed,
                    actionable: !report.ids.is_empty(),
                    report: text,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> ActionForm {
        let query: String = pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        serde_json::from_value(serde_json::Value::Object(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
                .collect(),
        ))
        .unwrap_or_else(|err| panic!("{query}: {err}"))
    }

    #[test]
    fn replay_forms_select_one_by_reason_or_all() {
        assert_eq!(
            Action::replay(&form(&[("scope", "one"), ("id", "j1")])),
            Ok(Action::Replay {
                selection: Selection::Ids(vec!["j1".into()]),
                extend: None
            })
        );
        assert!(matches!(
            Action::replay(&form(&[("scope", "reason"), ("reason", "HTTP 503"), ("extend", "10m")])),
            Ok(Action::Replay { selection: Selection::Reason(r), extend: Some(_) }) if r == "HTTP 503"
        ));
        assert_eq!(
            Action::replay(&form(&[("scope", "all")])).map(|a| a.describe()),
            Ok("Replay every dead letter".into())
        );
        for (pairs, field) in [
            (&[("scope", "one")][..], "id"),
            (&[("scope", "reason"), ("reason", " ")][..], "reason"),
            (&[("scope", "some")][..], "scope"),
            (&[("scope", "all"), ("extend", "25h")][..], "extend"),
        ] {
            assert_eq!(Action::replay(&form(pairs)).unwrap_err().field, field);
        }
    }

    #[test]
    fn purge_forms_need_an_age() {
        assert_eq!(
            Action::purge(&form(&[("older_than", "7d")])),
            Ok(Action::Purge {
                older_than: Duration::from_secs(7 * 86_400)
            })
        );
        assert_eq!(Action::purge(&form(&[])).unwrap_err().field, "older_than");
        assert_eq!(
            Action::purge(&form(&[("older_than", "soon")]))
                .unwrap_err()
                .field,
            "older_than"
        );
    }
}
