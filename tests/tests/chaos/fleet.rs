//! The worker replicas of one scenario: started, SIGKILLed, SIGSTOPped and SIGCONTed at the
//! scenario's command, and at the end told to stop with SIGTERM, where each one still alive
//! must exit 0 (the last promise the invariant check reads).

use std::time::Duration;

use herald_tests::WorkerProcess;
use herald_tests::scenario::NAMESPACE;

use crate::invariants::{Promise, Violation};

/// What the scenario last did to a replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Running,
    /// SIGSTOPped: frozen until SIGCONT.
    Stopped,
    /// SIGKILLed: gone, its jobs left pending.
    Killed,
    /// SIGTERMed during the run: handing its jobs back, finishing its sends, then exiting
    /// 0 (checked by [`Fleet::terminate_all`]).
    Terminating,
}

pub struct Replica {
    pub process: WorkerProcess,
    pub state: State,
}

/// Every replica a scenario started, alive or not.
pub struct Fleet {
    base_url: String,
    args: Vec<String>,
    pub replicas: Vec<Replica>,
}

impl Fleet {
    /// Replicas of `herald-worker run ARGS` against the sandbox at `base_url`.
    pub fn new(base_url: String, args: &[&str]) -> Fleet {
        Fleet {
            base_url,
            args: args.iter().map(|a| a.to_string()).collect(),
            replicas: Vec::new(),
        }
    }

    /// Starts replica `consumer` with Redis at `redis_url`; returns its index.
    pub fn spawn(&mut self, consumer: &str, redis_url: &str) -> usize {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let process = WorkerProcess::spawn(redis_url, NAMESPACE, &self.base_url, consumer, &args);
        self.replicas.push(Replica {
            process,
            state: State::Running,
        });
        self.replicas.len() - 1
    }

    pub fn name(&self, i: usize) -> &str {
        &self.replicas[i].process.consumer
    }

    /// `kill -9`: the replica dies holding whatever it held.
    pub fn kill(&mut self, i: usize) {
        let replica = &mut self.replicas[i];
        if replica.state == State::Stopped {
            replica.process.signal("CONT");
        }
        replica.process.kill9();
        replica.state = State::Killed;
    }

    /// `kill -TERM` during the run: a graceful stop (a scale-in, a rollout). Its exit is
    /// checked with everyone else's at the end. A replica started moments ago is first
    /// given the time to load (its first log line): a signal before its handlers exist
    /// meets the default action, which no process can promise to turn into exit 0.
    pub async fn term(&mut self, i: usize) {
        let replica = &mut self.replicas[i];
        assert_eq!(
            replica.state,
            State::Running,
            "only a running replica is told to stop"
        );
        let process = &replica.process;
        herald_tests::wait_until(
            "the replica told to stop to log its first line",
            Duration::from_secs(10),
            || async { !process.log().is_empty() },
        )
        .await;
        replica.process.signal("TERM");
        replica.state = State::Terminating;
    }

    /// `kill -STOP`: frozen mid-whatever, connections open.
    pub fn stop(&mut self, i: usize) {
        let replica = &mut self.replicas[i];
        assert_eq!(
            replica.state,
            State::Running,
            "only a running replica is stopped"
        );
        replica.process.signal("STOP");
        replica.state = State::Stopped;
    }

    /// `kill -CONT`: it carries on where it was frozen.
    pub fn resume(&mut self, i: usize) {
        let replica = &mut self.replicas[i];
        if replica.state == State::Stopped {
            replica.process.signal("CONT");
            replica.state = State::Running;
        }
    }

    /// SIGTERM to every replica still alive (resumed first if stopped); each must exit 0
    /// within `grace` plus a little. Returns what broke that promise.
    pub async fn terminate_all(&mut self, grace: Duration) -> Vec<Violation> {
        let mut violations = Vec::new();
        for i in 0..self.replicas.len() {
            self.resume(i);
            let replica = &mut self.replicas[i];
            if replica.state != State::Running {
                continue;
            }
            // Nothing in a scenario is a reason for a worker to exit on its own.
            if let Some(status) = replica.process.try_exit() {
                violations.push(Violation {
                    promise: Promise::ExitsOnSigterm,
                    detail: format!(
                        "replica {} exited by itself during the run ({status}), before any SIGTERM",
                        replica.process.consumer
                    ),
                });
                replica.state = State::Killed;
            }
        }
        let running: Vec<usize> = (0..self.replicas.len())
            .filter(|&i| self.replicas[i].state == State::Running)
            .collect();
        // A replica replaced a moment ago may not have reached `main` yet: a process has no
        // handler before it starts, and SIGTERM's default action ends it (holding nothing).
        // The promise is about a running worker: wait until each has said it is starting.
        for &i in &running {
            let process = &self.replicas[i].process;
            herald_tests::wait_until("the replica started", Duration::from_secs(15), || async {
                process.log().contains("worker starting")
            })
            .await;
        }
        for &i in &running {
            self.replicas[i].process.signal("TERM");
        }
        let alive: Vec<usize> = (0..self.replicas.len())
            .filter(|&i| matches!(self.replicas[i].state, State::Running | State::Terminating))
            .collect();
        for &i in &alive {
            let replica = &mut self.replicas[i];
            let exited = replica
                .process
                .wait_exit(grace + Duration::from_secs(5))
                .await;
            let consumer = replica.process.consumer.clone();
            let detail = match exited {
                Some(status) if status.success() => continue,
                Some(status) => format!("replica {consumer} exited with {status} on SIGTERM"),
                None => format!(
                    "replica {consumer} was still running {:?} after SIGTERM",
                    grace + Duration::from_secs(5)
                ),
            };
            let log = replica.process.log();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            violations.push(Violation {
                promise: Promise::ExitsOnSigterm,
                detail: format!(
                    "{detail}; its last log lines:\n      {}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n      ")
                ),
            });
            replica.state = State::Killed;
        }
        violations
    }
}
