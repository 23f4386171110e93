//! Replicas SIGKILLed, SIGTERMed, SIGSTOPped and SIGCONTed at random moments while a
//! backlog of bookings and OTPs drains. A killed or stopped replica is replaced a moment
//! later (a SIGTERM is a graceful stop: it must exit 0, and, unlike a kill, excuses no
//! second send); a frozen one
//! is thawed after up to 5 s, often longer than the 3 s `--claim-idle`, so its jobs are taken
//! over while it still holds them.

use std::time::Duration;

use herald_tests::wait_until;
use rand::RngExt;
use rand::rngs::StdRng;
use tokio::time::Instant;

use crate::fleet::{Fleet, State};
use crate::invariants::Run;
use crate::seed::Seed;
use crate::{disrupted_replica_args, enqueue_backlog, stand_in};
use herald_tests::scenario::Scenario;

const RATE: &str = "10/1s";
pub(crate) const REPLICAS: usize = 3;
const EVENTS: usize = 6;

/// What the scenario does to replica slot `slot` at one moment.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Act {
    Kill(usize),
    Term(usize),
    Stop(usize, Duration),
    Cont(usize),
    Replace(usize),
}

/// The whole plan, from the seed alone: moments after the run is under way, in order.
pub(crate) fn plan(rng: &mut StdRng) -> Vec<(Duration, Act)> {
    let mut moments: Vec<u64> = (0..EVENTS).map(|_| rng.random_range(200..5_000)).collect();
    moments.sort_unstable();
    let mut state = [State::Running; REPLICAS];
    // (when, act) of the follow-ups (thaw, replacement) not yet due.
    let mut later: Vec<(u64, Act)> = Vec::new();
    let mut steps = Vec::new();
    for at in moments {
        later.sort_by_key(|(t, _)| *t);
        while later.first().is_some_and(|(t, _)| *t <= at) {
            let (t, act) = later.remove(0);
            match act {
                Act::Cont(slot) | Act::Replace(slot) => state[slot] = State::Running,
                _ => unreachable!(),
            }
            steps.push((t, act));
        }
        let running: Vec<usize> = (0..REPLICAS)
            .filter(|&s| state[s] == State::Running)
            .collect();
        if running.is_empty() {
            continue;
        }
        let slot = running[rng.random_range(0..running.len())];
        let roll = rng.random_range(0..100);
        if roll < 50 {
            state[slot] = State::Killed;
            steps.push((
                at,
                if roll < 30 {
                    Act::Kill(slot)
                } else {
                    Act::Term(slot)
                },
            ));
            later.push((at + rng.random_range(200..1_500), Act::Replace(slot)));
        } else {
            let frozen = Duration::from_millis(rng.random_range(500..5_000));
            state[slot] = State::Stopped;
            steps.push((at, Act::Stop(slot, frozen)));
            later.push((at + frozen.as_millis() as u64, Act::Cont(slot)));
        }
    }
    steps.extend(later);
    steps.sort_by_key(|(t, _)| *t);
    steps
        .into_iter()
        .map(|(t, act)| (Duration::from_millis(t), act))
        .collect()
}

/// Starts `REPLICAS` replicas named `<name>-<slot>` at `rate`, waits for the first send, then
/// plays `steps` on them (each at its time from then), noting each disruption in `run`.
/// Replacements are named `<name>-<slot>-<generation>`.
pub(crate) async fn play(
    s: &Scenario,
    run: &mut Run,
    rate: &'static str,
    steps: Vec<(Duration, Act)>,
    name: &str,
) -> Fleet {
    let args = disrupted_replica_args(rate);
    let mut fleet = Fleet::new(s.sandbox.base_url(), &args);
    let redis_url = s.redis.url();
    let mut slot_of: Vec<usize> = (0..REPLICAS)
        .map(|slot| fleet.spawn(&format!("{name}-{slot}"), &redis_url))
        .collect();
    wait_until("the run under way", Duration::from_secs(30), || async {
        !s.accepted().is_empty()
    })
    .await;

    let start = Instant::now();
    let mut generation = 1;
    for (at, act) in steps {
        tokio::time::sleep_until(start + at).await;
        match act {
            Act::Kill(slot) => {
                let i = slot_of[slot];
                run.disrupted_now(format!("SIGKILL {}", fleet.name(i)));
                fleet.kill(i);
            }
            Act::Term(slot) => fleet.term(slot_of[slot]).await,
            Act::Stop(slot, frozen) => {
                let i = slot_of[slot];
                run.disrupted_now(format!("SIGSTOP {} for {frozen:?}", fleet.name(i)));
                fleet.stop(i);
            }
            Act::Cont(slot) => fleet.resume(slot_of[slot]),
            Act::Replace(slot) => {
                slot_of[slot] = fleet.spawn(&format!("{name}-{slot}-{generation}"), &redis_url);
                generation += 1;
            }
        }
    }
    fleet
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_replicas_killed_stopped_and_frozen_at_random() {
    let seed = Seed::for_test("chaos_replicas_killed_stopped_and_frozen_at_random");
    let mut rng = seed.rng();
    let steps = plan(&mut rng);
    eprintln!("plan: {steps:?}");
    let mut s = stand_in(RATE, Duration::from_millis(50)).await;
    let mut run = Run::new(&seed, RATE);
    enqueue_backlog(&mut s, &mut run, &mut rng).await;

    let mut fleet = play(&s, &mut run, RATE, steps, "chaos").await;
    run.wait_settled(&s, Duration::from_secs(30)).await;
    run.finish(&s, &mut fleet).await;
}

#[test]
fn the_plan_follows_the_seed_and_leaves_every_slot_running() {
    use rand::SeedableRng;
    for seed in 0..200 {
        let steps = plan(&mut StdRng::seed_from_u64(seed));
        let again = plan(&mut StdRng::seed_from_u64(seed));
        assert_eq!(format!("{steps:?}"), format!("{again:?}"));
        let mut state = [State::Running; REPLICAS];
        for (_, act) in &steps {
            match *act {
                Act::Kill(s) | Act::Term(s) => {
                    assert_eq!(state[s], State::Running);
                    state[s] = State::Killed;
                }
                Act::Stop(s, _) => {
                    assert_eq!(state[s], State::Running);
                    state[s] = State::Stopped;
                }
                Act::Cont(s) => {
                    assert_eq!(state[s], State::Stopped);
                    state[s] = State::Running;
                }
                Act::Replace(s) => {
                    assert_eq!(state[s], State::Killed);
                    state[s] = State::Running;
                }
            }
        }
        assert!(state.iter().all(|s| *s == State::Running), "seed {seed}");
    }
}
