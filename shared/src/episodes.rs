//! This process's Redis failure *episodes*: a stretch of time during which its calls fail
//! with one [kind](RedisErrorKind) of failure (Redis unreachable, out of memory, at
//! maxclients, loading, a read-only replica...). One warning when an episode starts, one when
//! it ends with its duration, however many tasks and calls fail in between; the episodes
//! counted by kind (`herald_redis_errors_total{kind,task}`) and shown while open
//! (`herald_redis_failing{kind}`); `/readyz` answers 503 while a long-running task cannot do
//! its work ([`Episodes::failing`]).
//!
//! Who reports:
//! - long-running tasks, through their [`crate::backoff::ReconnectBackoff`]: a task that
//!   fails *holds* the episode of its failure's kind until one of its calls succeeds (or the
//!   task ends);
//! - request handlers (the API's enqueue, the webhook receiver), with
//!   [`Episodes::request_failed`]: each failure keeps the episode open, none holds it (a
//!   request that is never retried proves nothing either way).
//!
//! An episode ends once no task holds it, a call has succeeded since its last failure, and
//! [`QUIET`] has passed: a task that succeeds once and fails again at once (some pooled
//! connections alive, new ones refused; another task that had not retried yet) does not
//! start a new episode each time. Its last line says how long it lasted, up to that success.
//! One that nothing has shown over (failed requests, then no request) ends after
//! [`UNCONFIRMED`] without a failure, and its last line says only that.
//!
//! A refusal that waiting cannot help ([`RedisErrorKind::waiting_helps`]: `NOPERM`,
//! `WRONGTYPE`, refused credentials) met by a long-running task is the process's
//! [`Refusal`]: logged once at ERROR with its fix, `/readyz` 503 from then on, and
//! [`Episodes::on_refusal`] cancelled so the binary stops and exits 1.
//!
//! Process-wide, like the Prometheus recorder: [`Episodes::process`]. It never retries,
//! sleeps a task or reads Redis.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::redis_pool::{RedisErrorKind, RedisFailure, refused_command};

/// How long an episode stays open once a call succeeded after its last failure: a failure
/// meanwhile belongs to it.
pub const QUIET: Duration = Duration::from_secs(5);

/// How long an episode no task holds stays open after its last failure when no call has
/// succeeded since (a request that failed and was not tried again proves nothing).
pub const UNCONFIRMED: Duration = Duration::from_secs(60);

/// A refusal no retry can help, met by a long-running task: what stops the process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub kind: RedisErrorKind,
    /// The task that met it (`dispatcher`, `retry promoter`, `webhook-processor`).
    pub task: &'static str,
    /// Redis's words (`NOPERM this user has no permissions to run the 'evalsha' command`).
    pub error: String,
}

impl Refusal {
    pub fn new(task: &'static str, err: &RedisFailure) -> Refusal {
        Refusal {
            kind: err.kind(),
            task,
            error: err.words(),
        }
    }

    /// The command Redis named, when it named one (`evalsha`).
    pub fn command(&self) -> Option<&str> {
        refused_command(&self.error)
    }

    /// What was refused, for people: `the 'evalsha' command`, `one of the keys of a command`,
    /// `a command inside a Lua script`.
    fn refused(&self) -> String {
        match (self.kind, self.command()) {
            (_, Some(command)) => format!("the '{command}' command"),
            (RedisErrorKind::NoPermission, None) if self.error.contains("keys") => {
                "one of the keys of a command".to_string()
            }
            (RedisErrorKind::NoPermission, None) => "a command inside a Lua script".to_string(),
            (RedisErrorKind::Authentication, None) => "this process's credentials".to_string(),
            (RedisErrorKind::WrongType, None) => {
                "a command on a key that holds another type of value".to_string()
            }
            (_, None) => "a command".to_string(),
        }
    }

    /// The refusal with its fix, naming the key pattern Herald's keys match (`{herald}:*`).
    pub fn explain(&self, key_pattern: &str) -> String {
        let fix = match (self.kind, self.command()) {
            (RedisErrorKind::NoPermission, Some(command)) => format!(
                "grant it to the ACL user with Herald's keys (ACL SETUSER <user> +{command} ~{key_pattern}; docs/redis.md, ACL users, lists every command Herald sends), then start the process again"
            ),
            (RedisErrorKind::NoPermission, None) => format!(
                "give the ACL user the key pattern ~{key_pattern} and every command docs/redis.md lists (ACL users); ACL LOG names what was refused; then start the process again"
            ),
            (RedisErrorKind::WrongType, _) => format!(
                "a key matching {key_pattern} was written by another application or by hand: give Herald a namespace of its own (HERALD_NAMESPACE), or delete the key, then start the process again"
            ),
            (kind, _) => kind.fix().to_string(),
        };
        format!(
            "Redis refused {} ({}); waiting cannot help, so the {} stopped: {fix}",
            self.refused(),
            self.error,
            self.task
        )
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Redis refused {} to the {} ({}): {}",
            self.refused(),
            self.task,
            self.error,
            self.kind.what()
        )
    }
}

/// This process's open episodes and its refusal, if any.
pub struct Episodes {
    state: Mutex<State>,
    /// Whether any episode is open: a success on the send path looks at this alone.
    any_open: AtomicBool,
    /// Cancelled on the process's [`Refusal`]: its binary stops.
    refused: CancellationToken,
}

impl Episodes {
    pub fn new() -> Episodes {
        Episodes {
            state: Mutex::new(State::default()),
            any_open: AtomicBool::new(false),
            refused: CancellationToken::new(),
        }
    }

    /// The process's episodes: every task and handler of the process reports here, and
    /// `/readyz` reads them.
    pub fn process() -> &'static Episodes {
        static PROCESS: OnceLock<Episodes> = OnceLock::new();
        PROCESS.get_or_init(Episodes::new)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A long-running task's call failed with `kind`: `joined` when the task was not failing
    /// with it before (it now holds the episode until it leaves).
    pub(crate) fn task_failed(
        &'static self,
        task: &'static str,
        kind: RedisErrorKind,
        joined: bool,
        err: &RedisFailure,
    ) {
        let now = Instant::now();
        let started = self.state().failed(kind, joined, now);
        self.any_open.store(true, Ordering::Relaxed);
        if started {
            announce_start(kind, task, &err.words(), "retrying with backoff");
        }
    }

    /// A task that held the episode of `kind` let go of it: its call `succeeded`, or it
    /// failed with another kind, or it ended.
    pub(crate) fn task_left(&'static self, kind: RedisErrorKind, succeeded: bool) {
        let now = Instant::now();
        self.state().left(kind, now, succeeded);
        self.close_due();
    }

    /// A call succeeded (a task's, or a request's: [`Episodes::request_succeeded`]): the
    /// episodes no task holds are over. Costs one atomic load while none is open.
    pub(crate) fn succeeded(&'static self) {
        if !self.any_open.load(Ordering::Relaxed) {
            return;
        }
        self.state().succeeded(Instant::now());
        self.close_due();
    }

    /// A request handler's Redis calls succeeded: what ends its episodes (see
    /// [`Episodes::request_failed`]).
    pub fn request_succeeded(&'static self) {
        self.succeeded();
    }

    /// A request handler's call failed (`task` names the route: `enqueue`, `webhook POST`):
    /// the episode of its kind starts (one warning) or goes on. The request itself is
    /// answered by its handler (503); a refusal waiting cannot help is logged at ERROR when
    /// its episode starts, and the process goes on serving what it can.
    pub fn request_failed(&'static self, task: &'static str, kind: RedisErrorKind, error: &str) {
        let now = Instant::now();
        let started = self.state().failed(kind, false, now);
        self.any_open.store(true, Ordering::Relaxed);
        if started {
            announce_start(kind, task, error, "requests fail meanwhile");
        }
        self.schedule_close();
    }

    /// Records the process's refusal (the first one only), says it once at ERROR with its
    /// fix, and cancels [`Episodes::on_refusal`].
    pub(crate) fn refuse(&'static self, refusal: Refusal) {
        {
            let mut state = self.state();
            if state.refusal.is_some() {
                return;
            }
            state.refusal = Some(refusal.clone());
        }
        metrics::counter!("herald_redis_errors_total", "kind" => refusal.kind.label(), "task" => refusal.task)
            .increment(1);
        metrics::gauge!("herald_redis_failing", "kind" => refusal.kind.label()).set(1.0);
        tracing::error!(
            kind = refusal.kind.label(),
            task = refusal.task,
            command = refusal.command().unwrap_or("-"),
            error = %refusal.error,
            fix = refusal.kind.fix(),
            "Redis refused {} to the {}; waiting cannot help, so this process stops",
            refusal.refused(),
            refusal.task
        );
        self.refused.cancel();
    }

    /// The process's refusal, once a long-running task met one.
    pub fn refusal(&self) -> Option<Refusal> {
        self.state().refusal.clone()
    }

    /// Cancelled when a long-running task meets a refusal waiting cannot help: the binary
    /// stops its work and exits 1 ([`Episodes::refusal`] says why).
    pub fn on_refusal(&self) -> CancellationToken {
        self.refused.clone()
    }

    /// The kind of failure a long-running task is stuck on now, and for how long: `/readyz`
    /// answers 503 meanwhile.
    pub fn failing(&self) -> Option<(RedisErrorKind, Duration)> {
        self.state()
            .held()
            .map(|(kind, since)| (kind, since.elapsed()))
    }

    /// Ends the episodes quiet for long enough (one line each), and wakes up again when the
    /// next one may be.
    fn close_due(&'static self) {
        let ended = {
            let mut state = self.state();
            let ended = state.close_due(Instant::now());
            self.any_open
                .store(!state.open.is_empty(), Ordering::Relaxed);
            ended
        };
        for end in ended {
            announce_end(&end);
        }
        self.schedule_close();
    }

    /// Wakes [`Episodes::close_due`] when the next episode no task holds has been quiet for
    /// [`QUIET`] (outside a runtime, the next report closes it).
    fn schedule_close(&'static self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let due = {
            let mut state = self.state();
            let Some(due) = state.next_due() else {
                return;
            };
            // One wake-up at a time: an earlier one looks again when it fires.
            if state.wake.is_some_and(|at| at <= due) {
                return;
            }
            state.wake = Some(due);
            due
        };
        runtime.spawn(async move {
            tokio::time::sleep_until(due).await;
            self.state().wake = None;
            self.close_due();
        });
    }
}

impl Default for Episodes {
    fn default() -> Self {
        Episodes::new()
    }
}

/// The first line of an episode; `meanwhile` says what the process does until it ends.
fn announce_start(kind: RedisErrorKind, task: &'static str, error: &str, meanwhile: &str) {
    metrics::counter!("herald_redis_errors_total", "kind" => kind.label(), "task" => task)
        .increment(1);
    metrics::gauge!("herald_redis_failing", "kind" => kind.label()).set(1.0);
    if kind.waiting_helps() {
        tracing::warn!(kind = kind.label(), task, error = %error, fix = kind.fix(), "{}; {meanwhile} (one line when it ends)", kind.what());
    } else {
        tracing::error!(kind = kind.label(), task, error = %error, fix = kind.fix(), "{}; {meanwhile}, but waiting cannot help", kind.what());
    }
}

fn announce_end(end: &Ended) {
    metrics::gauge!("herald_redis_failing", "kind" => end.kind.label()).set(0.0);
    let lasted = Duration::from_millis(end.lasted.as_millis() as u64);
    let lasted_ms = lasted.as_millis() as u64;
    let lasted = humantime::format_duration(lasted);
    if end.confirmed {
        tracing::warn!(
            kind = end.kind.label(),
            failures = end.failures,
            lasted_ms,
            "{} after {lasted}",
            end.kind.over()
        );
    } else {
        tracing::warn!(
            kind = end.kind.label(),
            failures = end.failures,
            lasted_ms,
            "no call has failed with {} for {}: over as far as this process can tell, after {lasted} at least",
            end.kind,
            humantime::format_duration(UNCONFIRMED)
        );
    }
}

/// The episodes as data, changed only through the transitions below, each given the time:
/// testable without a clock.
#[derive(Default)]
struct State {
    open: BTreeMap<RedisErrorKind, Episode>,
    refusal: Option<Refusal>,
    /// When the one pending wake-up of [`Episodes::close_due`] fires, if one is pending.
    wake: Option<Instant>,
}

struct Episode {
    started: Instant,
    /// Long-running tasks failing with this kind now.
    holders: usize,
    /// Calls that failed with it, every task and handler together.
    failures: u64,
    last_failure: Instant,
    /// When the last holder left.
    released: Option<Instant>,
    /// The first success, once no task held it, since its last failure.
    recovered: Option<Instant>,
}

impl Episode {
    /// When it was last seen going on: its last failure, or its last holder leaving.
    fn seen(&self) -> Instant {
        self.released
            .map_or(self.last_failure, |at| at.max(self.last_failure))
    }

    /// When it may end, once no task holds it.
    fn due(&self) -> Option<Instant> {
        (self.holders == 0).then(|| match self.recovered {
            Some(at) => self.seen().max(at) + QUIET,
            None => self.seen() + UNCONFIRMED,
        })
    }
}

/// An episode that ended: its kind, how long it lasted (first failure to the success that
/// ended it, or to when it was last seen), its failed calls, and whether a success showed
/// it over.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Ended {
    kind: RedisErrorKind,
    lasted: Duration,
    failures: u64,
    confirmed: bool,
}

impl State {
    /// A call failed with `kind` at `now`; true when that started an episode.
    fn failed(&mut self, kind: RedisErrorKind, joined: bool, now: Instant) -> bool {
        let mut started = false;
        let episode = self.open.entry(kind).or_insert_with(|| {
            started = true;
            Episode {
                started: now,
                holders: 0,
                failures: 0,
                last_failure: now,
                released: None,
                recovered: None,
            }
        });
        episode.failures += 1;
        episode.last_failure = now;
        episode.recovered = None;
        if joined {
            episode.holders += 1;
        }
        started
    }

    /// A holder of `kind` left at `now`; its call `succeeded`, or not (it failed with
    /// another kind, or ended).
    fn left(&mut self, kind: RedisErrorKind, now: Instant, succeeded: bool) {
        if let Some(episode) = self.open.get_mut(&kind) {
            episode.holders = episode.holders.saturating_sub(1);
            if episode.holders == 0 {
                episode.released = Some(now);
            }
        }
        if succeeded {
            self.succeeded(now);
        }
    }

    /// A call succeeded at `now`: the episodes no task holds are over.
    fn succeeded(&mut self, now: Instant) {
        for episode in self.open.values_mut().filter(|e| e.holders == 0) {
            episode.recovered.get_or_insert(now);
        }
    }

    /// Ends the episodes due at `now`.
    fn close_due(&mut self, now: Instant) -> Vec<Ended> {
        let due: Vec<RedisErrorKind> = self
            .open
            .iter()
            .filter(|(_, e)| e.due().is_some_and(|due| now >= due))
            .map(|(kind, _)| *kind)
            .collect();
        due.into_iter()
            .filter_map(|kind| {
                let episode = self.open.remove(&kind)?;
                let over = episode.recovered.unwrap_or_else(|| episode.seen());
                Some(Ended {
                    kind,
                    lasted: over.duration_since(episode.started),
                    failures: episode.failures,
                    confirmed: episode.recovered.is_some(),
                })
            })
            .collect()
    }

    /// When the next episode no task holds may end.
    fn next_due(&self) -> Option<Instant> {
        self.open.values().filter_map(Episode::due).min()
    }

    /// An episode some task holds, and since when.
    fn held(&self) -> Option<(RedisErrorKind, Instant)> {
        self.open
            .iter()
            .filter(|(_, e)| e.holders > 0)
            .map(|(kind, e)| (*kind, e.started))
            .min_by_key(|(_, started)| *started)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RedisErrorKind::{Loading, OutOfMemory, Unreachable};

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    /// Four tasks meet an outage, fail again and again, then come back one by one: one
    /// start, one end, once the last of them is back and [`QUIET`] has passed.
    #[test]
    fn one_episode_however_many_tasks_fail_however_often() {
        let t0 = Instant::now();
        let mut state = State::default();
        assert!(state.failed(Unreachable, true, t0));
        for i in 1..4 {
            assert!(!state.failed(Unreachable, true, t0 + secs(0.1 * i as f64)));
        }
        for i in 0..30 {
            assert!(!state.failed(Unreachable, false, t0 + secs(0.5 + 0.1 * i as f64)));
        }
        assert_eq!(state.held().map(|(k, _)| k), Some(Unreachable));
        for i in 0..4 {
            let at = t0 + secs(4.0 + i as f64);
            state.left(Unreachable, at, true);
            assert!(state.close_due(at).is_empty());
        }
        assert_eq!(state.held(), None, "nothing holds it: ready again");
        assert!(
            state
                .close_due(t0 + secs(7.0) + QUIET - secs(0.01))
                .is_empty()
        );
        let ended = state.close_due(t0 + secs(7.0) + QUIET);
        assert_eq!(
            ended,
            [Ended {
                kind: Unreachable,
                lasted: secs(7.0),
                failures: 34,
                confirmed: true,
            }]
        );
        assert!(state.open.is_empty());
    }

    /// A task that succeeds once and fails again within [`QUIET`], or another that had not
    /// retried yet failing just after, goes on in the same episode: no new start. (Seen with
    /// a real worker at maxclients: its start-up task, retrying every 5 s, got a connection;
    /// its code eraser was refused the next one a millisecond later.)
    #[test]
    fn a_relapse_within_the_quiet_time_is_the_same_episode() {
        let t0 = Instant::now();
        let mut state = State::default();
        assert!(state.failed(OutOfMemory, true, t0));
        state.left(OutOfMemory, t0 + secs(6.0), true);
        assert!(state.close_due(t0 + secs(6.0)).is_empty(), "it just ended");
        assert!(
            !state.failed(OutOfMemory, true, t0 + secs(6.1)),
            "same episode"
        );
        state.left(OutOfMemory, t0 + secs(7.0), true);
        assert_eq!(state.next_due(), Some(t0 + secs(7.0) + QUIET));
        assert!(state.close_due(t0 + secs(6.1) + QUIET).is_empty());
        let ended = state.close_due(t0 + secs(7.0) + QUIET);
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].lasted, secs(7.0));
        assert!(
            state.failed(OutOfMemory, true, t0 + secs(20.0)),
            "a later one is a new episode"
        );
    }

    /// Redis restarts: refused connections, then LOADING, then answers. Each kind is its own
    /// episode: the outage is over once the first call succeeds after it.
    #[test]
    fn a_task_that_meets_another_kind_leaves_the_first_episode() {
        let t0 = Instant::now();
        let mut state = State::default();
        assert!(state.failed(Unreachable, true, t0));
        assert!(!state.failed(Unreachable, false, t0 + secs(1.5)));
        state.left(Unreachable, t0 + secs(2.0), false);
        assert!(state.failed(Loading, true, t0 + secs(2.0)));
        assert_eq!(state.held().map(|(k, _)| k), Some(Loading));
        assert!(
            state.close_due(t0 + secs(2.0) + QUIET).is_empty(),
            "nothing has succeeded yet"
        );
        state.left(Loading, t0 + secs(3.0), true);
        let ended = state.close_due(t0 + secs(3.0) + QUIET);
        let kinds: Vec<_> = ended.iter().map(|e| (e.kind, e.lasted)).collect();
        assert_eq!(kinds, [(Unreachable, secs(3.0)), (Loading, secs(1.0))]);
        assert!(ended.iter().all(|e| e.confirmed));
    }

    /// Failed requests hold nothing: readiness never waits on a request that will not be
    /// retried. A request that succeeds shows the episode over; without one it ends after
    /// [`UNCONFIRMED`], saying only that nothing has failed since.
    #[test]
    fn failed_requests_keep_an_episode_open_but_never_hold_it() {
        let t0 = Instant::now();
        let mut state = State::default();
        assert!(state.failed(OutOfMemory, false, t0));
        assert!(!state.failed(OutOfMemory, false, t0 + secs(2.0)));
        assert_eq!(state.held(), None);
        assert!(state.close_due(t0 + secs(2.0) + QUIET).is_empty());
        state.succeeded(t0 + secs(3.0));
        let ended = state.close_due(t0 + secs(3.0) + QUIET);
        assert_eq!((ended[0].lasted, ended[0].confirmed), (secs(3.0), true));

        assert!(state.failed(OutOfMemory, false, t0 + secs(10.0)));
        assert!(state.close_due(t0 + secs(10.0) + QUIET).is_empty());
        let ended = state.close_due(t0 + secs(10.0) + UNCONFIRMED);
        assert_eq!((ended[0].lasted, ended[0].confirmed), (secs(0.0), false));
    }

    /// A success while a task still holds the episode (reads work under OOM, the start-up
    /// task's group creation does not) ends nothing.
    #[test]
    fn a_success_ends_nothing_a_task_still_holds() {
        let t0 = Instant::now();
        let mut state = State::default();
        assert!(state.failed(OutOfMemory, true, t0));
        state.succeeded(t0 + secs(1.0));
        assert!(state.close_due(t0 + secs(60.0) + UNCONFIRMED).is_empty());
        assert_eq!(state.held().map(|(k, _)| k), Some(OutOfMemory));
    }

    /// The process-wide object on a paused clock: readiness follows the holders, the episode
    /// closes by itself [`QUIET`] after its last failure, and a refusal cancels the token.
    #[tokio::test(start_paused = true)]
    async fn episodes_close_by_themselves_and_a_refusal_is_kept_and_signalled() {
        let episodes: &'static Episodes = Box::leak(Box::default());
        let err = RedisFailure::from(deadpool_redis::redis::RedisError::from(
            std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        ));
        episodes.task_failed("dispatcher", Unreachable, true, &err);
        episodes.task_failed("dispatcher", Unreachable, false, &err);
        tokio::time::advance(secs(2.0)).await;
        assert_eq!(episodes.failing(), Some((Unreachable, secs(2.0))));
        episodes.task_left(Unreachable, true);
        assert_eq!(episodes.failing(), None, "ready once no task is stuck");
        assert_eq!(episodes.state().open.len(), 1, "quiet for 2 s only");
        tokio::time::sleep(QUIET).await;
        tokio::task::yield_now().await;
        assert!(episodes.state().open.is_empty(), "closed by its wake-up");

        let refused = episodes.on_refusal();
        assert!(!refused.is_cancelled());
        let refusal = Refusal {
            kind: RedisErrorKind::WrongType,
            task: "retry promoter",
            error: "WRONGTYPE Operation against a key holding the wrong kind of value".into(),
        };
        episodes.refuse(refusal.clone());
        episodes.refuse(Refusal {
            task: "dispatcher",
            ..refusal.clone()
        });
        assert!(refused.is_cancelled());
        assert_eq!(
            episodes.refusal(),
            Some(refusal),
            "the first refusal is kept"
        );
    }

    #[test]
    fn a_refusal_is_explained_with_its_command_and_the_key_pattern() {
        let refusal = Refusal {
            kind: RedisErrorKind::NoPermission,
            task: "retry promoter",
            error: "NOPERM this user has no permissions to run the 'evalsha' command".into(),
        };
        let text = refusal.explain("{herald}:*");
        assert!(
            text.starts_with("Redis refused the 'evalsha' command (NOPERM"),
            "{text}"
        );
        assert!(text.contains("+evalsha ~{herald}:*"), "{text}");
        assert!(text.contains("the retry promoter stopped"), "{text}");
        let keys = Refusal {
            error:
                "NOPERM this user has no permissions to access one of the keys used as arguments"
                    .into(),
            ..refusal.clone()
        };
        assert!(keys.explain("{x}:*").contains("one of the keys"));
        assert!(keys.explain("{x}:*").contains("~{x}:*"));
    }
}
