//! What an operator can do from the dashboard, each in two steps: a preview that changes
//! nothing and says what the action will do (the same plan and text as `herald-worker dlq
//! replay --dry-run` and `dlq purge` without `--yes`), then, confirmed, the action and its
//! result. Both steps are POSTs with the session's CSRF token ([`crate::server`] checks it and
//! read-only mode before anything here runs).
//!
//! The actions are the libraries' own: the operator's ([`DeadLetters::replay`],
//! [`DeadLetters::purge`]: atomic per letter, safe to repeat) and the producer's
//! ([`Producer::cancel`]: one script that meets the workers' last check before a send, so a
//! job cancelled before its send began is never sent; safe to repeat).

use std::time::Duration;

use herald_operator::dlq::{
    self, DeadLetters, DlqError, Extension, PurgeSelection, ReplayOptions, Selection,
};
use herald_shared::config::parse_duration;
use producer::{CancelOutcome, Producer};
use serde::Deserialize;
use uuid::Uuid;

/// A replay, purge or cancel form as posted.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ActionForm {
    /// The session's CSRF token.
    pub csrf: Option<String>,
    /// Replay: `one` (with `id`), `reason` (with `reason`), `all`.
    pub scope: Option<String>,
    /// Replay one: the dead letter's job id; cancel: the job's id.
    pub id: Option<String>,
    pub reason: Option<String>,
    /// Replay: a new deadline for expired OTPs (`10m`, at most 24h).
    pub extend: Option<String>,
    /// Purge: dead for longer than this (`7d`).
    pub older_than: Option<String>,
    /// Present on the second step: do it.
    pub confirm: Option<String>,
    /// Unblock: the OTP guard's prefix (`+91987654`).
    pub prefix: Option<String>,
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

/// A field's text, trimmed; `None` when absent or blank.
fn text(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
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
    /// Cancel a job whose send has not begun (queued, scheduled, waiting for a retry).
    Cancel {
        job_id: Uuid,
    },
}

/// What the actions act on: the dead letters and the producer's cancel. Borrowed from the
/// dashboard's state for one request.
pub struct Operations<'a> {
    pub dead: &'a DeadLetters,
    pub producer: &'a Producer,
}

/// Why an action could not run (Redis did not answer, or answered what it should not).
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("{0}")]
    Dlq(#[from] DlqError),
    #[error("{0}")]
    Cancel(#[from] producer::Error),
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

    pub fn cancel(form: &ActionForm) -> Result<Action, FormError> {
        let id = text(&form.id).ok_or_else(|| bad("id", "is required: the job's id"))?;
        let job_id = Uuid::parse_str(&id).map_err(|_| {
            bad(
                "id",
                format!("{id:?} is not a job id (a UUID such as 0192f0c4-...)"),
            )
        })?;
        Ok(Action::Cancel { job_id })
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
            Action::Cancel { job_id } => format!("Cancel job {job_id}"),
        }
    }

    /// Previews (`confirmed` false: nothing changes) or does the action.
    pub async fn run(&self, ops: &Operations<'_>, confirmed: bool) -> Result<Outcome, ActionError> {
        let dead = ops.dead;
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
            Action::Cancel { job_id } if !confirmed => Ok(Outcome {
                done: false,
                actionable: true,
                report: format!(
                    "job {job_id} will be cancelled if its send has not begun: taken off its \
                     lane, the scheduled jobs or the retries, and never sent.\n\
                     A job already sending, sent or dead is left as it is."
                ),
            }),
            Action::Cancel { job_id } => {
                let report = match ops.producer.cancel(*job_id).await? {
                    CancelOutcome::Cancelled { job_id } => {
                        format!("job {job_id} cancelled: it will never be sent")
                    }
                    CancelOutcome::TooLate { job_id, state } => format!(
                        "too late: job {job_id} is {}; nothing changed",
                        state.as_str()
                    ),
                    CancelOutcome::Unknown => format!(
                        "no job {job_id}: never enqueued, or its record expired; nothing changed"
                    ),
                };
                Ok(Outcome {
                    done: true,
                    actionable: false,
                    report,
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
    fn cancel_forms_name_a_job_by_its_uuid() {
        let id = "0192f0c4-7b1e-7cc0-9a55-0d2f8e7b4c31";
        assert_eq!(
            Action::cancel(&form(&[("id", id)])),
            Ok(Action::Cancel {
                job_id: Uuid::parse_str(id).unwrap()
            })
        );
        assert_eq!(Action::cancel(&form(&[])).unwrap_err().field, "id");
        let err = Action::cancel(&form(&[("id", "B123")])).unwrap_err();
        assert_eq!(err.field, "id");
        assert!(err.reason.contains("\"B123\" is not a job id"), "{err}");
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
