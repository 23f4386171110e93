//! The queues jobs wait in.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The queues jobs wait in. OTPs have their own so workers can always serve them first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    Otp,
    /// Booking confirmations, reminders and raw requests.
    Booking,
}

impl Lane {
    /// In the order workers serve them.
    pub const ALL: [Lane; 2] = [Lane::Otp, Lane::Booking];

    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Otp => "otp",
            Lane::Booking => "booking",
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
        match s {
            "otp" => Ok(Lane::Otp),
            "booking" => Ok(Lane::Booking),
            other => Err(format!("unknown lane {other:?}; expected otp or booking")),
        }
    }
}
