//! Watching a run: progress until every job is settled, then the delivery reports.

use std::time::Duration;

use herald_shared::config::RateLimit;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use herald_pipeline::dispatcher::StartError as WorkerStartError;

use crate::demo_redis::*;
use crate::options::*;
use crate::receiver::DemoReceiver;

/// Shows progress until every job is sent or dead. Fails on timeout, interruption, or a
/// worker that stopped.
pub(crate) async fn watch(
    redis: &DemoRedis,
    total: usize,
    rate: RateLimit,
    mode: ProgressMode,
    shutdown: &CancellationToken,
    workers: &mut JoinSet<Result<(), WorkerStartError>>,
) -> Result<(), DemoError> {
    if mode != ProgressMode::Off {
        eprintln!(
            "herald demo: {total} jobs, {WORKERS} workers, Interakt sandbox limited to {rate}"
        );
    }
    let mut progress = Progress::start(mode, total as u64, "settled");
    let deadline = Instant::now() + DEADLINE;
    let result = loop {
        let status = redis.status().await?;
        let t = &status.total;
        let settled = t.sent + t.dead;
        progress.show(
            settled,
            format!(
                "sent {} · waiting to retry {} · dead {} · queued {}",
                t.sent,
                t.delayed,
                t.dead,
                t.ready + t.pending
            ),
        );
        if settled >= total as u64 && t.ready + t.pending + t.delayed == 0 {
            break Ok(());
        }
        if Instant::now() >= deadline {
            break Err(DemoError::TimedOut { settled, total });
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = shutdown.cancelled() => break Err(DemoError::Interrupted),
            Some(done) = workers.join_next() => {
                break Err(match done {
                    Ok(Err(err)) => err.into(),
                    _ => DemoError::WorkerStopped,
                });
            }
        }
    };
    progress.finish();
    result
}

/// Once the jobs are settled, waits until the webhooks about the sent messages are processed
/// ([`Delivery::complete`]) or [`DELIVERY_WAIT`] has passed, and returns the counts either
/// way (the summary says what was not reported). Fails on interruption, or a receiver that
/// stopped.
pub(crate) async fn wait_for_delivery(
    redis: &DemoRedis,
    receiver: &mut DemoReceiver,
    mode: ProgressMode,
    shutdown: &CancellationToken,
) -> Result<Delivery, DemoError> {
    let deadline = Instant::now() + DELIVERY_WAIT;
    let mut progress = None;
    let result = loop {
        let delivery = redis.delivery().await?;
        let progress = progress
            .get_or_insert_with(|| Progress::start(mode, delivery.sent, "reported by webhook"));
        progress.show(
            delivery.delivered + delivery.revoked,
            format!(
                "delivered {} · read {} · revoked {} · inbound {}",
                delivery.delivered, delivery.read, delivery.revoked, delivery.inbound
            ),
        );
        if delivery.complete() || Instant::now() >= deadline {
            break Ok(delivery);
        }
        if let Some(err) = receiver.failure().await {
            break Err(DemoError::Webhook(err));
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = shutdown.cancelled() => break Err(DemoError::Interrupted),
        }
    };
    if let Some(progress) = progress {
        progress.finish();
    }
    result
}

/// Progress towards `total`: a bar, or a line on stderr every two seconds, or nothing.
pub(crate) struct Progress {
    pub(crate) mode: ProgressMode,
    pub(crate) total: u64,
    pub(crate) what: &'static str,
    pub(crate) bar: Option<ProgressBar>,
    pub(crate) next_line: Instant,
}

impl Progress {
    pub(crate) fn start(mode: ProgressMode, total: u64, what: &'static str) -> Progress {
        let bar = (mode == ProgressMode::Bar).then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(&format!(
                    "{{spinner}} {{elapsed:>3}} [{{bar:30}}] {{pos}}/{{len}} {what}  {{msg}}"
                ))
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress {
            mode,
            total,
            what,
            bar,
            next_line: Instant::now(),
        }
    }

    pub(crate) fn show(&mut self, done: u64, line: String) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            bar.set_message(line);
        } else if self.mode == ProgressMode::Lines && Instant::now() >= self.next_line {
            eprintln!("herald demo: {done}/{} {}: {line}", self.total, self.what);
            self.next_line = Instant::now() + Duration::from_secs(2);
        }
    }

    pub(crate) fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
