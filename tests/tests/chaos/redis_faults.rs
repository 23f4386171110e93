//! Redis stopped and restarted, and briefly out of reach: two replicas reach it through
//! their own fault-injecting proxy ([`TcpProxy`]), a third directly. In a seeded order and
//! at seeded moments: Redis stops for a while and starts again (AOF on, nothing lost); one
//! proxy drops every connection; one stalls (connections open, nothing forwarded, sometimes
//! past `--claim-idle`); one refuses connections for a while. Workers must ride it all out.

use std::time::Duration;

use herald_tests::{TcpProxy, wait_until};
use rand::RngExt;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use tokio::time::Instant;

use crate::fleet::Fleet;
use crate::invariants::{Run, now_ms};
use crate::seed::Seed;
use crate::{disrupted_replica_args, enqueue_backlog, stand_in};

const RATE: &str = "10/1s";

/// One fault, with its target proxy (0 or 1) where it has one.
#[derive(Clone, Copy, Debug)]
enum Fault {
    RedisDown(Duration),
    Drop(usize),
    Stall(usize, Duration),
    Refuse(usize, Duration),
}

/// Every kind once, in a seeded order, at seeded moments after the run is under way.
fn plan(rng: &mut StdRng) -> Vec<(Duration, Fault)> {
    let mut faults = vec![
        Fault::RedisDown(Duration::from_millis(rng.random_range(500..2_500))),
        Fault::Drop(rng.random_range(0..2)),
        Fault::Stall(
            rng.random_range(0..2),
            Duration::from_millis(rng.random_range(500..4_500)),
        ),
        Fault::Refuse(
            rng.random_range(0..2),
            Duration::from_millis(rng.random_range(300..2_000)),
        ),
    ];
    faults.shuffle(rng);
    let mut at = 0;
    faults
        .into_iter()
        .map(|fault| {
            at += rng.random_range(300..1_500);
            (Duration::from_millis(at), fault)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_redis_restarted_dropped_stalled_and_refused() {
    let seed = Seed::for_test("chaos_redis_restarted_dropped_stalled_and_refused");
    let mut rng = seed.rng();
    let steps = plan(&mut rng);
    eprintln!("plan: {steps:?}");
    let mut s = stand_in(RATE, Duration::from_millis(50)).await;
    let mut run = Run::new(&seed, RATE);
    enqueue_backlog(&mut s, &mut run, &mut rng).await;

    let proxies = [
        TcpProxy::for_redis_port(s.redis.port()).await,
        TcpProxy::for_redis_port(s.redis.port()).await,
    ];
    let args = disrupted_replica_args(RATE);
    let mut fleet = Fleet::new(s.sandbox.base_url(), &args);
    fleet.spawn("via-proxy-0", &proxies[0].redis_url());
    fleet.spawn("via-proxy-1", &proxies[1].redis_url());
    fleet.spawn("direct", &s.redis.url());
    wait_until("the run under way", Duration::from_secs(30), || async {
        !s.accepted().is_empty()
    })
    .await;

    let start = Instant::now();
    for &(at, fault) in &steps {
        tokio::time::sleep_until(start + at).await;
        let from = now_ms();
        match fault {
            Fault::RedisDown(down) => {
                s.redis.stop();
                // The outage is the scenario: Redis stays down this long.
                tokio::time::sleep(down).await;
                s.redis.start_again();
                run.disrupted(format!("Redis stopped for {down:?}"), from, now_ms());
            }
            Fault::Drop(p) => {
                proxies[p].drop_connections();
                run.disrupted(format!("proxy {p} dropped every connection"), from, from);
            }
            Fault::Stall(p, stalled) => {
                proxies[p].stall(stalled);
                let to = from + stalled.as_millis() as u64;
                run.disrupted(format!("proxy {p} stalled for {stalled:?}"), from, to);
            }
            Fault::Refuse(p, refused) => {
                proxies[p].refuse();
                // Refused this long: the scenario's own pause.
                tokio::time::sleep(refused).await;
                proxies[p].resume();
                run.disrupted(
                    format!("proxy {p} refused connections for {refused:?}"),
                    from,
                    now_ms(),
                );
            }
        }
    }

    // A stall may outlast the plan's last step: it is part of the run.
    let stalls_end = steps
        .iter()
        .filter_map(|(at, fault)| match fault {
            Fault::Stall(_, stalled) => Some(*at + *stalled),
            _ => None,
        })
        .max()
        .unwrap_or_default();
    tokio::time::sleep_until(start + stalls_end).await;

    run.wait_settled(&s, Duration::from_secs(30)).await;
    run.finish(&s, &mut fleet).await;
    drop(proxies);
}

#[test]
fn the_plan_follows_the_seed_and_has_every_fault_once() {
    use rand::SeedableRng;
    for seed in 0..200 {
        let steps = plan(&mut StdRng::seed_from_u64(seed));
        let again = plan(&mut StdRng::seed_from_u64(seed));
        assert_eq!(format!("{steps:?}"), format!("{again:?}"));
        let kinds: Vec<&str> = steps
            .iter()
            .map(|(_, f)| match f {
                Fault::RedisDown(_) => "down",
                Fault::Drop(_) => "drop",
                Fault::Stall(..) => "stall",
                Fault::Refuse(..) => "refuse",
            })
            .collect();
        for kind in ["down", "drop", "stall", "refuse"] {
            assert_eq!(
                kinds.iter().filter(|k| **k == kind).count(),
                1,
                "seed {seed}"
            );
        }
        assert!(steps.windows(2).all(|w| w[0].0 < w[1].0), "in order");
    }
}
