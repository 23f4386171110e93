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

/// The fields of a booking, declared once. Every struct that carries a booking is made from
/// this list: the model ([`Booking`], below), the producer's JSON specs (API and bulk:
/// `BookingSpec`, `ReminderSpec`) and the CLI's arguments (`BookingArgs`). `emit` is a
/// macro of the caller's that receives the caller's struct (`{ #[...] pub struct Name {
/// own fields } }`) and then each field, `[doc, name: type, model {..}, spec {..}, arg {..}]`,
/// with its attributes for each place: it picks the group it needs.
#[macro_export]
macro_rules! booking_fields {
    ($emit:ident! { $($head:tt)* }) => {
        $emit! { { $($head)* }
            [
                #[doc = "Recipient in E.164 form (`+919999999999`), valid for its country code (libphonenumber's metadata)."]
                phone: String,
                model {},
                spec { #[schema(format = "e164", pattern = r"^\+[1-9][0-9]{1,14}$", example = "+919999999999")] },
                arg { #[arg(long, value_parser = $crate::phone::typed_number, help = "Recipient in E.164 form (+919999999999; spaces, dashes, dots and parentheses between the digits are dropped), valid for its country code")] }
            ]
            [
                #[doc = "The booking's id: not blank; at most 30 characters (a DLT SMS variable)."]
                booking_id: String,
                model {},
                spec { #[schema(pattern = r"[^ \t\n\r]", max_length = 30, example = "B123")] },
                arg { #[arg(long)] }
            ]
            [
                #[doc = "What was booked (\"Haircut\"): not blank; at most 30 characters (a DLT SMS variable)."]
                service: String,
                model {},
                spec { #[schema(pattern = r"[^ \t\n\r]", max_length = 30, example = "Haircut")] },
                arg { #[arg(long)] }
            ]
            [
                #[doc = "The appointment's calendar date, `YYYY-MM-DD` (`2026-11-24`)."]
                date: String,
                model {},
                spec { #[schema(format = Date, example = "2026-11-24")] },
                arg { #[arg(long)] }
            ]
            [
                #[doc = "The appointment's time, `HH:MM`, 24-hour (`10:30`)."]
                time: String,
                model {},
                spec { #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$", example = "10:30")] },
                arg { #[arg(long)] }
            ]
            [
                #[doc = "The card's picture: an `http://` or `https://` URL with a host, no whitespace, at most 2,000 characters. (Whitespace is Unicode's White_Space, spelled out: regex engines disagree on what `\\s` means.)"]
                image_url: Option<String>,
                model { #[serde(default, skip_serializing_if = "Option::is_none")] },
                spec {
                    #[serde(default, skip_serializing_if = "Option::is_none")]
                    #[schema(
                        pattern = r"^[Hh][Tt][Tt][Pp][Ss]?://[^/\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$",
                        max_length = 2000,
                        example = "https://example.com/haircut.jpg"
                    )]
                },
                arg { #[arg(long)] }
            ]
        }
    };
}

/// Emits a struct with the booking's fields (their `model` attributes) before its own; for
/// [`booking_fields!`].
#[macro_export]
#[doc(hidden)]
macro_rules! booking_model_struct {
    ({ $(#[$meta:meta])* $vis:vis struct $name:ident { $($own:tt)* } }
     $( [ #[doc = $doc:expr] $field:ident : $ty:ty, model { $($m:tt)* }, spec { $($s:tt)* }, arg { $($a:tt)* } ] )*) => {
        $(#[$meta])*
        $vis struct $name {
            $( #[doc = $doc] $($m)* pub $field: $ty, )*
            $($own)*
        }
    };
}

booking_fields! { booking_model_struct! {
    /// A booking confirmation card: the facts, validated when the job is made.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    pub struct Booking {}
} }

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
