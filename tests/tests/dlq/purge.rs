//! `dlq purge`: without --yes it only says what it would delete; with it, dead letters leave
//! the hash and the index together. Named ids that are not dead: exit 1.

use std::time::Duration;

use herald_tests::scenario::{SandboxSetup, Scenario, booking};

use crate::support::{EXHAUSTED, assert_exit, dead, stdout};

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_without_yes_deletes_nothing_and_with_yes_deletes_what_it_said() {
    let mut s = Scenario::start(SandboxSetup::default()).await;
    // Dead for 1, 2, 3 and 4 hours.
    let letters: Vec<_> = (1..=4)
        .map(|i| dead(booking(i), EXHAUSTED, 3, i as u32 * HOUR))
        .collect();
    s.store_dead_letters(&letters).await;
    let id = |i: usize| letters[i].job_id.clone();

    let out = s.run_worker_command(&["dlq", "purge", "--all"]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("would delete 4 dead letters"), "{text}");
    assert!(text.contains("--yes"), "{text}");
    assert_eq!(s.dead_ids().await.len(), 4, "nothing deleted");

    let out = s.run_worker_command(&["dlq", "purge", "--older-than", "150m"]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("would delete 2 dead letters"), "{text}");
    assert!(text.contains(&id(2)) && text.contains(&id(3)), "{text}");
    assert!(!text.contains(&id(0)), "{text}");

    let out = s.run_worker_command(&["dlq", "purge", "--older-than", "150m", "--yes"]);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("deleted 2 dead letters"),
        "{}",
        stdout(&out)
    );
    let mut left = s.dead_ids().await;
    left.sort();
    let mut expected = vec![id(0), id(1)];
    expected.sort();
    assert_eq!(left, expected);
    assert_eq!(s.status().await.total.dead, 2, "removed from the index too");

    let out = s.run_worker_command(&["dlq", "purge", &id(0), "unknown-id", "--yes"]);
    assert_exit(&out, 1);
    let text = stdout(&out);
    assert!(text.contains("deleted 1 dead letters"), "{text}");
    assert!(text.contains("unknown-id: not found"), "{text}");
    assert_eq!(s.dead_ids().await, [id(1)]);

    let out = s.run_worker_command(&["dlq", "purge", "--all", "--yes"]);
    assert_exit(&out, 0);
    assert!(s.dead_ids().await.is_empty());
    assert_eq!(s.status().await.total.dead, 0);
}
