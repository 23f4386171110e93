//! The seed behind a scenario's random choices: `HERALD_CHAOS_SEED` when set (to replay a
//! run), else a fresh one. Printed at the start of the test and repeated in every failure.

use std::time::{SystemTime, UNIX_EPOCH};

use rand::SeedableRng;
use rand::rngs::StdRng;

/// The variable that replays a run: `HERALD_CHAOS_SEED=N cargo test -p herald-tests --test chaos NAME`.
pub const SEED_VAR: &str = "HERALD_CHAOS_SEED";

/// One test's seed and name.
#[derive(Clone, Debug)]
pub struct Seed {
    pub value: u64,
    pub test: &'static str,
}

impl Seed {
    /// The seed for test `test`, printed with the command that replays it.
    pub fn for_test(test: &'static str) -> Seed {
        let value = match std::env::var(SEED_VAR) {
            Ok(text) => text.trim().parse().unwrap_or_else(|_| {
                panic!("{SEED_VAR}={text:?} is not a seed; give the number a chaos test printed, e.g. {SEED_VAR}=12345")
            }),
            Err(_) => fresh(),
        };
        let seed = Seed { value, test };
        eprintln!("chaos {test}: seed {value} (replay: {})", seed.replay());
        seed
    }

    /// The generator every random choice of the scenario is drawn from, in a fixed order.
    pub fn rng(&self) -> StdRng {
        StdRng::seed_from_u64(self.value)
    }

    /// The command that runs this test again with the same choices.
    pub fn replay(&self) -> String {
        format!(
            "{SEED_VAR}={} cargo test -p herald-tests --test chaos {}",
            self.value, self.test
        )
    }
}

/// A seed nobody chose: the clock's nanoseconds mixed with the process id (splitmix64).
fn fresh() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut z = nanos ^ (u64::from(std::process::id()) << 32);
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    // Small enough to type back.
    (z ^ (z >> 31)) % 1_000_000_000
}
