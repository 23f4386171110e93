//! A send task's hold on its replica's capacity, in two stages: one of `--concurrency`
//! request slots from its grant until Interakt has answered, then one of as many settle
//! slots until its settle is written. At most `--concurrency` requests are in flight (what
//! the flag promises Interakt), and the settles of answered jobs overlap the next requests
//! instead of keeping their slots: a settle is a Redis round trip that Interakt never sees.
//! The settle slots bound what a replica holds while Redis is slow: a task that finds none
//! keeps its request slot, and the dispatcher starts nothing more.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Owned by one send task; dropping it frees whatever it holds.
pub(super) struct Hold {
    request: Option<OwnedSemaphorePermit>,
    settle: Option<OwnedSemaphorePermit>,
    /// The replica's settle slots (the dispatcher holds the other handle).
    settles: Arc<Semaphore>,
}

impl Hold {
    /// A hold on `request`, a request slot the dispatcher took for this task.
    pub(super) fn new(request: OwnedSemaphorePermit, settles: Arc<Semaphore>) -> Hold {
        Hold {
            request: Some(request),
            settle: None,
            settles,
        }
    }

    /// Interakt has answered: trades the request slot for a settle slot, waiting for one.
    pub(super) async fn answered(&mut self) {
        if self.settle.is_none() {
            let settle = self.settles.clone().acquire_owned().await;
            self.settle = Some(settle.expect("the settle slots are never closed"));
        }
        self.request = None;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::timeout;

    use super::*;

    /// Paused time: a wait that cannot end times out at once.
    #[tokio::test(start_paused = true)]
    async fn an_answered_task_frees_its_request_slot_and_settles_are_bounded_too() {
        let requests = Arc::new(Semaphore::new(1));
        let settles = Arc::new(Semaphore::new(1));
        let take = || requests.clone().try_acquire_owned();

        let mut first = Hold::new(take().unwrap(), settles.clone());
        assert!(take().is_err(), "one request in flight at most");
        first.answered().await;
        assert_eq!(settles.available_permits(), 0, "the first settles");

        let mut second = Hold::new(take().expect("the request slot is free"), settles.clone());
        assert!(
            timeout(Duration::from_secs(60), second.answered())
                .await
                .is_err(),
            "no settle slot: the second waits"
        );
        assert!(take().is_err(), "and keeps its request slot meanwhile");

        drop(first);
        assert!(
            timeout(Duration::from_secs(60), second.answered())
                .await
                .is_ok()
        );
        assert!(take().is_ok(), "then frees it");
        drop(second);
        assert_eq!(settles.available_permits(), 1, "everything freed");
    }
}
