//! What a job sends: an OTP, a booking confirmation, a reminder, or a raw Interakt request;
//! the facts, not a rendered request (the worker renders them: [`crate::compose`]).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::secret::Redacted;
use crate::wire::SendRequest;

/// Default validity of an OTP: the worker will not send it after this.
pub const DEFAULT_OTP_VALIDITY: Duration = Duration::from_secs(10 * 60);

/// The longest an OTP may stay valid (`valid_for`), and the furthest `dlq replay --extend`
/// may move a deadline: a code older than a day is no use to anyone.
pub const MAX_OTP_VALIDITY: Duration = Duration::from_secs(24 * 60 * 60);

/// [`MAX_OTP_VALIDITY`] as people write it, for messages.
pub const MAX_OTP_VALIDITY_TEXT: &str = "24h";

/// The longest idempotency key accepted.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 200;

/// What a job sends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Payload {
    Otp(Otp),
    Booking(Booking),
    Reminder(Reminder),
    Raw { request: Box<SendRequest> },
}

/// The kinds of job, as named on the CLI and in bulk files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    Otp,
    Booking,
    Reminder,
    Raw,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Otp => "otp",
            JobKind::Booking => "booking",
            JobKind::Reminder => "reminder",
            JobKind::Raw => "raw",
        }
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an OTP's code becomes in a dead letter once its deadline has passed.
pub const ERASED_CODE: &str = "[erased]";

/// A one-time password. The code is a secret: redacted in Debug, and never put into
/// postBack data (which comes back through webhooks and logs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Otp {
    /// E.164, validated.
    pub phone: String,
    pub code: Redacted<String>,
}

/// A booking confirmation card.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Booking {
    /// E.164, validated.
    pub phone: String,
    pub booking_id: String,
    pub service: String,
    /// `2026-11-24`
    pub date: String,
    /// `10:30`
    pub time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
}

/// A reminder of a booking: its own card ("Reminder: your Haircut today at 10:30") and SMS
/// template. `tz` is the appointment's time zone, which says whether "today" is true where
/// the customer is when the reminder goes out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reminder {
    #[serde(flatten)]
    pub booking: Booking,
    /// IANA name (`Asia/Kolkata`).
    pub tz: String,
}
