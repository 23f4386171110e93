//! The queues jobs wait in, and the tenants that share them.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::validate::ValidationError;

/// The queues jobs wait in. OTPs have their own and strict priority; the others share the
/// rest of the budget by weight (`--lane-weights`), so a morning's reminders or a campaign
/// never hold up the booking confirmations behind them.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    Otp,
    /// Booking confirmations, and raw requests unless they name another lane.
    Booking,
    /// Reminders of bookings (and raw requests sent with `--lane reminder`).
    Reminder,
    /// Campaigns: raw requests sent with `--lane bulk`.
    Bulk,
}

impl Lane {
    /// In the order workers look at them: OTPs first.
    pub const ALL: [Lane; 4] = [Lane::Otp, Lane::Booking, Lane::Reminder, Lane::Bulk];

    /// The lanes that share the budget left by OTPs.
    pub const SHARED: [Lane; 3] = [Lane::Booking, Lane::Reminder, Lane::Bulk];

    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Otp => "otp",
            Lane::Booking => "booking",
            Lane::Reminder => "reminder",
            Lane::Bulk => "bulk",
        }
    }

    pub fn is_otp(self) -> bool {
        self == Lane::Otp
    }

    /// The budget's class of the lane: OTPs, or everything else (`booking`), as the shared
    /// budget's script counts them (its reserve and shares are for OTPs against the rest).
    pub fn budget_class(self) -> Lane {
        if self.is_otp() {
            Lane::Otp
        } else {
            Lane::Booking
        }
    }
}

impl fmt::Display for Lane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Lane {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Lane::ALL
            .into_iter()
            .find(|lane| lane.as_str() == s)
            .ok_or_else(|| format!("unknown lane {s:?}; expected otp, booking, reminder or bulk"))
    }
}

/// The business a job is sent for (a salon, a city, a brand): within a lane, tenants with a
/// backlog are served in turn. Jobs that name none belong to [`Tenant::DEFAULT`].
/// Read back checked: a job whose tenant is not a tenant name does not decode.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Tenant(String);

impl From<Tenant> for String {
    fn from(tenant: Tenant) -> String {
        tenant.0
    }
}

impl TryFrom<String> for Tenant {
    type Error = String;

    fn try_from(name: String) -> Result<Tenant, String> {
        Tenant::parse("tenant", &name).map_err(|err| err.to_string())
    }
}

impl Tenant {
    /// The tenant of jobs that name none; its jobs wait in the lane's own stream.
    pub const DEFAULT: &'static str = "default";

    /// The longest tenant name.
    pub const MAX_CHARS: usize = 64;

    /// A tenant named `name`: 1 to 64 of `A-Za-z0-9_.:-`; `field` names it in the error.
    pub fn parse(field: &str, name: &str) -> Result<Tenant, ValidationError> {
        let ok = !name.is_empty()
            && name.len() <= Tenant::MAX_CHARS
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c));
        if !ok {
            return Err(ValidationError::single(
                field,
                format!(
                    "is {name:?}; a tenant is 1 to {} of A-Z a-z 0-9 _ . : -",
                    Tenant::MAX_CHARS
                ),
            ));
        }
        Ok(Tenant(name.to_string()))
    }

    pub fn default_tenant() -> Tenant {
        Tenant(Tenant::DEFAULT.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_default(&self) -> bool {
        self.0 == Tenant::DEFAULT
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_read_back_as_written() {
        for lane in Lane::ALL {
            assert_eq!(lane.as_str().parse::<Lane>(), Ok(lane));
        }
        assert!("otp2".parse::<Lane>().unwrap_err().contains("bulk"));
        assert_eq!(Lane::Bulk.budget_class(), Lane::Booking);
    }

    #[test]
    fn tenants_are_names_that_fit_a_key() {
        for good in ["salon-a", "a", "city:blr", "x_y.z", &"a".repeat(64)] {
            assert!(Tenant::parse("tenant", good).is_ok(), "{good}");
        }
        for bad in ["", "a b", "a{b", "ü", &"a".repeat(65), "a/b"] {
            let err = Tenant::parse("tenant", bad).unwrap_err().to_string();
            assert!(err.starts_with("tenant: "), "{err}");
        }
    }
}
