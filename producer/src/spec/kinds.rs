//! Each kind of job as callers write it: an OTP, a booking, a reminder, a raw request.

use std::time::Duration;

use herald_shared::Redacted;
use herald_shared::job::{Booking, Lane};
use herald_shared::wire::SendRequest;
use serde::{Deserialize, Serialize};

/// `{"kind":"otp", ...}`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OtpSpec {
    /// E.164 (`+919999999999`), valid for its country code (libphonenumber's metadata).
    #[schema(
        format = "e164",
        pattern = r"^\+[1-9][0-9]{1,14}$",
        example = "+919999999999"
    )]
    pub phone: String,
    /// 1 to 30 letters or digits (a DLT SMS variable); spaces around it are ignored.
    /// Redacted in Debug.
    #[schema(value_type = String, pattern = r"^[ \t\n\r]*[A-Za-z0-9]{1,30}[ \t\n\r]*$", example = "123456")]
    pub code: Redacted<String>,
    /// How long the code may still be sent: a duration (`10m`, `90s`, `1h 30m`), longer
    /// than zero and at most 24h. 10m when absent.
    #[serde(
        default,
        with = "human_duration",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, format = "herald-duration-24h", example = "10m")]
    pub valid_for: Option<Duration>,
    /// Enqueue once per key within the idempotency window; 1 to 200 characters. When the
    /// `Idempotency-Key` header is also sent, the two must be equal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 200, example = "login:42")]
    pub idempotency_key: Option<String>,
    /// At most one unsent job per replace key: this job cancels the older one enqueued under
    /// it, unless that one is already being sent or sent (then both stand). 1 to 200
    /// characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 200, example = "otp:+919999999999")]
    pub replace_key: Option<String>,
    /// The business the job is sent for: within a lane, tenants with a backlog are served
    /// in turn. 1 to 64 of `A-Za-z0-9_.:-`; `default` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        pattern = r"^[A-Za-z0-9_.:-]{1,64}$",
        min_length = 1,
        max_length = 64,
        example = "salon-a"
    )]
    pub tenant: Option<String>,
    /// Not part of the document: an OTP cannot be scheduled. Read only to say so (400 naming
    /// the field) rather than "unknown field".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(ignore)]
    pub send_at: Option<String>,
    /// As `send_at`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "human_duration"
    )]
    #[schema(ignore)]
    pub send_in: Option<Duration>,
}

/// Emits a spec struct with the booking's fields (their `spec` attributes: serde and the
/// OpenAPI schema) before its own, and the two ways between it and a [`Booking`]; for
/// [`herald_shared::booking_fields!`], which declares the fields once.
macro_rules! booking_spec_struct {
    ({ $(#[$meta:meta])* $vis:vis struct $name:ident { $($own:tt)* } }
     $( [ #[doc = $doc:expr] $field:ident : $ty:ty, model { $($m:tt)* }, spec { $($s:tt)* }, arg { $($a:tt)* } ] )*) => {
        $(#[$meta])*
        $vis struct $name {
            $( #[doc = $doc] $($s)* pub $field: $ty, )*
            $($own)*
        }

        impl $name {
            /// The booking this spec names.
            pub fn booking(&self) -> Booking {
                Booking { $( $field: self.$field.clone(), )* }
            }

            /// Names `booking` in this spec.
            pub fn set_booking(&mut self, booking: Booking) {
                $( self.$field = booking.$field; )*
            }
        }
    };
}

herald_shared::booking_fields! { booking_spec_struct! {
    /// `{"kind":"booking", ...}`
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct BookingSpec {
    /// The appointment's time zone, an IANA name (`Asia/Kolkata`); the server's
    /// `HERALD_TIMEZONE` when absent. Its start is the default `not_after`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = "herald-timezone", example = "Asia/Kolkata")]
    pub tz: Option<String>,
    /// Send at this time rather than now: RFC 3339 with its offset
    /// (`2026-11-24T08:30:00+05:30`), at most 365 days ahead; a time already past means now.
    /// Not with `send_in`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        format = "herald-send-at",
        pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$",
        example = "2026-11-24T08:30:00+05:30"
    )]
    pub send_at: Option<String>,
    /// Send this long from now rather than now: a duration (`2h`, `1day`), longer than
    /// zero and at most 365 days. Not with `send_at`.
    #[serde(
        default,
        with = "human_duration",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, format = "herald-duration-365d")]
    pub send_in: Option<Duration>,
    /// Never sent after this time (RFC 3339 with its offset): dead-lettered as `expired`
    /// instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        format = "herald-send-at",
        pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$",
        example = "2026-11-24T10:30:00+05:30"
    )]
    pub not_after: Option<String>,
    /// The business the job is sent for: within a lane, tenants with a backlog are served
    /// in turn. 1 to 64 of `A-Za-z0-9_.:-`; `default` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^[A-Za-z0-9_.:-]{1,64}$", min_length = 1, max_length = 64, example = "salon-a")]
    pub tenant: Option<String>,
    /// As in [`OtpSpec`]: the older unsent job under this key is cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 200, example = "booking:B123")]
    pub replace_key: Option<String>,
    /// As in [`OtpSpec`]: 1 to 200 characters, equal to the `Idempotency-Key` header if both are sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        min_length = 1,
        max_length = 200,
        example = "booking:B123:confirmation"
    )]
    pub idempotency_key: Option<String>,
    }
} }

herald_shared::booking_fields! { booking_spec_struct! {
    /// `{"kind":"reminder", ...}`: a reminder of a booking, with its own card and SMS
    /// template; usually scheduled (`before`, `send_at` or `send_in`).
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct ReminderSpec {
    /// The appointment's time zone, an IANA name (`Asia/Kolkata`); the server's
    /// `HERALD_TIMEZONE` when absent. Its start is the default `not_after`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = "herald-timezone", example = "Asia/Kolkata")]
    pub tz: Option<String>,
    /// Send this long before the appointment (`2h`); a time already past means now. Not
    /// with `send_at` or `send_in`.
    #[serde(
        default,
        with = "human_duration",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, format = "herald-duration-365d")]
    pub before: Option<Duration>,
    /// Send at this time rather than now: RFC 3339 with its offset
    /// (`2026-11-24T08:30:00+05:30`), at most 365 days ahead; a time already past means now.
    /// Not with `send_in`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        format = "herald-send-at",
        pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$",
        example = "2026-11-24T08:30:00+05:30"
    )]
    pub send_at: Option<String>,
    /// Send this long from now rather than now: a duration (`2h`, `1day`), longer than
    /// zero and at most 365 days. Not with `send_at`.
    #[serde(
        default,
        with = "human_duration",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, format = "herald-duration-365d")]
    pub send_in: Option<Duration>,
    /// Never sent after this time (RFC 3339 with its offset): dead-lettered as `expired`
    /// instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        format = "herald-send-at",
        pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$",
        example = "2026-11-24T10:30:00+05:30"
    )]
    pub not_after: Option<String>,
    /// The business the job is sent for: within a lane, tenants with a backlog are served
    /// in turn. 1 to 64 of `A-Za-z0-9_.:-`; `default` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^[A-Za-z0-9_.:-]{1,64}$", min_length = 1, max_length = 64, example = "salon-a")]
    pub tenant: Option<String>,
    /// As in [`OtpSpec`]: the older unsent job under this key is cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 200, example = "booking:B123")]
    pub replace_key: Option<String>,
    /// As in [`OtpSpec`]: 1 to 200 characters, equal to the `Idempotency-Key` header if both are sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 200, example = "booking:B123:reminder")]
    pub idempotency_key: Option<String>,
    }
} }

/// `{"kind":"raw","request":{...}}`: a complete Interakt request body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSpec {
    /// Boxed: a request is far larger than the other specs.
    #[schema(value_type = Object)]
    pub request: Box<SendRequest>,
    /// As in [`OtpSpec`]: 1 to 200 characters, equal to the `Idempotency-Key` header if both are sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 200)]
    pub idempotency_key: Option<String>,
    /// Send at this time rather than now: RFC 3339 with its offset
    /// (`2026-11-24T08:30:00+05:30`), at most 365 days ahead; a time already past means now.
    /// Not with `send_in`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        format = "herald-send-at",
        pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$",
        example = "2026-11-24T08:30:00+05:30"
    )]
    pub send_at: Option<String>,
    /// Send this long from now rather than now: a duration (`2h`, `1day`), longer than
    /// zero and at most 365 days. Not with `send_at`.
    #[serde(
        default,
        with = "human_duration",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, format = "herald-duration-365d")]
    pub send_in: Option<Duration>,
    /// Never sent after this time (RFC 3339 with its offset): dead-lettered as `expired`
    /// instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        format = "herald-send-at",
        pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$",
        example = "2026-11-24T10:30:00+05:30"
    )]
    pub not_after: Option<String>,
    /// As in [`OtpSpec`]: the older unsent job under this key is cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        min_length = 1,
        max_length = 200,
        example = "campaign:42:+919999999999"
    )]
    pub replace_key: Option<String>,
    /// The business the job is sent for: within a lane, tenants with a backlog are served
    /// in turn. 1 to 64 of `A-Za-z0-9_.:-`; `default` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        pattern = r"^[A-Za-z0-9_.:-]{1,64}$",
        min_length = 1,
        max_length = 64,
        example = "salon-a"
    )]
    pub tenant: Option<String>,
    /// The lane it waits in: `booking` when absent, `reminder` or `bulk` (campaigns: they
    /// share the budget by `--lane-weights`), or `otp` for a code with a `not_after` at most
    /// 24h away.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lane: Option<Lane>,
}

/// `Option<Duration>` as a humantime string (`"10m"`).
mod human_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| herald_shared::config::parse_duration(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}
