//! How the lanes other than OTPs share the budget (`--lane-weights`), and the tenants within
//! a lane (`--tenant-weights`): `name=weight,...`, each weight a whole number from 1 to
//! [`MAX_WEIGHT`].

use herald_shared::config::ConfigError;
use herald_shared::job::{Lane, Tenant};

/// The largest weight: enough for any ratio that matters, small enough that a turn's share
/// never overflows.
pub const MAX_WEIGHT: u32 = 1000;

/// The default `--lane-weights`.
pub const DEFAULT_LANE_WEIGHTS: &str = "booking=6,reminder=3,bulk=1";

pub const LANE_WEIGHTS_VAR: &str = "HERALD_LANE_WEIGHTS (--lane-weights)";
pub const TENANT_WEIGHTS_VAR: &str = "HERALD_TENANT_WEIGHTS (--tenant-weights)";

/// The weights of the lanes that share what OTPs leave, in [`Lane::SHARED`] order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LaneWeights([(Lane, u32); 3]);

impl LaneWeights {
    pub fn of(&self, lane: Lane) -> u32 {
        self.0
            .iter()
            .find(|(l, _)| *l == lane)
            .map_or(1, |(_, w)| *w)
    }

    pub fn iter(&self) -> impl Iterator<Item = (Lane, u32)> + '_ {
        self.0.iter().copied()
    }

    /// Parses `booking=6,reminder=3,bulk=1`; a lane left out keeps its default weight.
    pub fn parse(text: &str) -> Result<LaneWeights, ConfigError> {
        let mut weights = LaneWeights::default().0;
        for (name, weight) in pairs(LANE_WEIGHTS_VAR, text)? {
            let lane: Lane = name.parse().map_err(|err: String| {
                ConfigError::new(LANE_WEIGHTS_VAR, format!("{text:?}: {err}"))
            })?;
            let Some(slot) = weights.iter_mut().find(|(l, _)| *l == lane) else {
                return Err(ConfigError::new(
                    LANE_WEIGHTS_VAR,
                    format!(
                        "{text:?}: otp has no weight: OTPs always go first; weigh booking, reminder and bulk"
                    ),
                ));
            };
            slot.1 = weight;
        }
        Ok(LaneWeights(weights))
    }
}

impl Default for LaneWeights {
    fn default() -> Self {
        LaneWeights([(Lane::Booking, 6), (Lane::Reminder, 3), (Lane::Bulk, 1)])
    }
}

/// The tenants that do not weigh 1.
pub fn parse_tenant_weights(text: &str) -> Result<Vec<(String, u32)>, ConfigError> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut out: Vec<(String, u32)> = Vec::new();
    for (name, weight) in pairs(TENANT_WEIGHTS_VAR, text)? {
        let tenant = Tenant::parse("tenant", &name)
            .map_err(|err| ConfigError::new(TENANT_WEIGHTS_VAR, format!("{text:?}: {err}")))?;
        if out.iter().any(|(t, _)| t == tenant.as_str()) {
            return Err(ConfigError::new(
                TENANT_WEIGHTS_VAR,
                format!("{text:?}: {tenant} is given twice"),
            ));
        }
        out.push((tenant.as_str().to_string(), weight));
    }
    Ok(out)
}

/// `name=weight` pairs, comma-separated, each weight 1 to [`MAX_WEIGHT`].
fn pairs(var: &str, text: &str) -> Result<Vec<(String, u32)>, ConfigError> {
    text.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (name, weight) = part.split_once('=').ok_or_else(|| {
                ConfigError::new(
                    var,
                    format!("{part:?} is not name=weight, e.g. booking=6,reminder=3,bulk=1"),
                )
            })?;
            let weight: u32 = weight
                .trim()
                .parse()
                .ok()
                .filter(|w| (1..=MAX_WEIGHT).contains(w))
                .ok_or_else(|| {
                    ConfigError::new(
                        var,
                        format!("{part:?}: a weight is a whole number from 1 to {MAX_WEIGHT}"),
                    )
                })?;
            Ok((name.trim().to_string(), weight))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lane_weights_default_and_override() {
        let d = LaneWeights::parse(DEFAULT_LANE_WEIGHTS).unwrap();
        assert_eq!(d, LaneWeights::default());
        let w = LaneWeights::parse("bulk=2").unwrap();
        assert_eq!((w.of(Lane::Booking), w.of(Lane::Bulk)), (6, 2));
        for (bad, says) in [
            ("otp=5", "otp has no weight"),
            ("booking=0", "from 1 to 1000"),
            ("booking=6,parcel=1", "unknown lane"),
            ("booking", "name=weight"),
            ("booking=1001", "from 1 to 1000"),
        ] {
            let err = LaneWeights::parse(bad).unwrap_err().to_string();
            assert!(err.starts_with(LANE_WEIGHTS_VAR), "{err}");
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn tenant_weights_name_tenants() {
        assert_eq!(
            parse_tenant_weights("salon-a=3, salon-b=1").unwrap(),
            [("salon-a".to_string(), 3), ("salon-b".to_string(), 1)]
        );
        assert!(parse_tenant_weights("").unwrap().is_empty());
        for bad in ["a b=1", "a=1,a=2", "a=x"] {
            let err = parse_tenant_weights(bad).unwrap_err().to_string();
            assert!(err.starts_with(TENANT_WEIGHTS_VAR), "{err}");
        }
    }
}
