//! The send path's calls that a replica's tasks ask for at about the same time, made as one
//! script call: the last checks before sends (`begin_send.lua`) and the records of sends
//! Interakt accepted (`complete.lua`). Each script takes many deliveries and treats each as
//! if alone, so a batch changes how many calls Redis runs (one `EVALSHA`, one argument
//! table, one `TIME`, one `ZADD` per token log, one `XACK` and `XDEL` per stream for a
//! round's answers), never what any delivery's check or record does.
//!
//! A [`Batcher`] owns a task, started by its first ask, that takes everything asked for
//! while it waits, up to [`MAX_BATCH`], as one call; at most [`IN_FLIGHT`] calls are out at
//! once, so asks pile up behind them and the next call takes them all. What it never does:
//! retry, or decide anything about a delivery. When a call fails (Redis unreachable, a
//! script error) or the task is gone, every ask of it gets `None` and its caller makes its
//! own call alone, as it would without batching, with its own error and its own retries;
//! every script is safe to run again after a call that failed part way (the record of a
//! send is written once, a check of a job already `sending` by its owner passes).

use std::future::Future;
use std::sync::{Arc, OnceLock};

use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::lanes::RedisFailure;

/// Deliveries in one call at most: a call of the largest batch keeps Redis busy for well
/// under a millisecond.
pub(crate) const MAX_BATCH: usize = 64;

/// Calls of one batcher out at once: while they are, the next asks wait and go together.
pub(crate) const IN_FLIGHT: usize = 2;

/// One script's call for several deliveries.
pub(crate) trait Batched: Send + Sync + 'static {
    /// What one delivery asks (owned: it crosses to the batcher's task).
    type Item: Send + 'static;
    /// What it is answered.
    type Answer: Send + 'static;

    /// One call for `items`; their answers, in order.
    fn call(
        &self,
        items: &[Self::Item],
    ) -> impl Future<Output = Result<Vec<Self::Answer>, RedisFailure>> + Send;
}

type Ask<B> = (
    <B as Batched>::Item,
    oneshot::Sender<<B as Batched>::Answer>,
);

/// Batches one script's calls. Held by the [`super::Settler`] (its clones share it through
/// an `Arc`); the task it starts ends when the last clone is dropped.
pub(crate) struct Batcher<B: Batched> {
    calls: Arc<B>,
    asks: OnceLock<mpsc::UnboundedSender<Ask<B>>>,
}

impl<B: Batched> Batcher<B> {
    pub(crate) fn new(calls: B) -> Batcher<B> {
        Batcher {
            calls: Arc::new(calls),
            asks: OnceLock::new(),
        }
    }

    /// `item`'s answer, made in one call with whatever else was asked meanwhile; `None` when
    /// that call failed (or the task is gone): then the caller makes its own call alone.
    pub(crate) async fn ask(&self, item: B::Item) -> Option<B::Answer> {
        let asks = self.asks.get_or_init(|| {
            let (asks, queue) = mpsc::unbounded_channel();
            tokio::spawn(run(self.calls.clone(), queue));
            asks
        });
        let (answer, answered) = oneshot::channel();
        asks.send((item, answer)).ok()?;
        answered.await.ok()
    }
}

/// The batcher's task: takes what was asked, up to [`MAX_BATCH`], once one of the
/// [`IN_FLIGHT`] calls is free, and makes it one call.
async fn run<B: Batched>(calls: Arc<B>, mut queue: mpsc::UnboundedReceiver<Ask<B>>) {
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT));
    loop {
        let permit = in_flight
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let Some(first) = queue.recv().await else {
            return;
        };
        let mut asks = vec![first];
        while asks.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(ask) => asks.push(ask),
                Err(_) => break,
            }
        }
        let calls = calls.clone();
        tokio::spawn(async move {
            let (items, answers): (Vec<_>, Vec<_>) = asks.into_iter().unzip();
            match calls.call(&items).await {
                Ok(replies) if replies.len() == answers.len() => {
                    for (answer, reply) in answers.into_iter().zip(replies) {
                        // A caller that gave up (its task aborted at shutdown) needs no answer.
                        let _ = answer.send(reply);
                    }
                }
                Ok(_) => tracing::warn!(
                    asks = items.len(),
                    "a batched call answered for another number of deliveries; each makes its own call"
                ),
                Err(err) => tracing::debug!(
                    asks = items.len(),
                    error = %err,
                    "a batched call failed; each delivery makes its own call"
                ),
            }
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;

    /// Answers each item doubled after a pause, and notes each call's size; fails calls
    /// holding a 0.
    #[derive(Default)]
    struct Doubles {
        sizes: Mutex<Vec<usize>>,
    }

    impl Batched for Doubles {
        type Item = u32;
        type Answer = u32;

        async fn call(&self, items: &[u32]) -> Result<Vec<u32>, RedisFailure> {
            self.sizes.lock().unwrap().push(items.len());
            tokio::time::sleep(Duration::from_millis(10)).await;
            if items.contains(&0) {
                let err = redis::RedisError::from((redis::ErrorKind::Io, "refused"));
                return Err(err.into());
            }
            Ok(items.iter().map(|i| i * 2).collect())
        }
    }

    /// Asks made while calls are out go together: 100 asks at once take a few calls, not
    /// 100, each answered with its own item's answer.
    #[tokio::test(start_paused = true)]
    async fn asks_made_together_go_in_few_calls_each_answered_its_own() {
        let batcher = Arc::new(Batcher::new(Doubles::default()));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 1..=100u32 {
            let batcher = batcher.clone();
            tasks.spawn(async move { (i, batcher.ask(i).await) });
        }
        while let Some(done) = tasks.join_next().await {
            let (i, answer) = done.unwrap();
            assert_eq!(answer, Some(i * 2));
        }
        let sizes = batcher.calls.sizes.lock().unwrap().clone();
        assert_eq!(sizes.iter().sum::<usize>(), 100);
        assert!(sizes.len() <= 4, "calls: {sizes:?}");
        assert!(sizes.iter().all(|&n| n <= MAX_BATCH), "{sizes:?}");
    }

    /// A call that fails answers none of its asks: each caller makes its own call.
    #[tokio::test(start_paused = true)]
    async fn a_failed_call_leaves_each_ask_to_its_caller() {
        let batcher = Arc::new(Batcher::new(Doubles::default()));
        let (a, b) = tokio::join!(batcher.ask(0), batcher.ask(3));
        let sizes = batcher.calls.sizes.lock().unwrap().clone();
        if sizes == [2] {
            assert_eq!((a, b), (None, None), "one failed call of both");
        } else {
            assert_eq!((a, b), (None, Some(6)), "calls: {sizes:?}");
        }
    }
}
