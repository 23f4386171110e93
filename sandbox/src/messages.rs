//! [`AcceptedMessage`]: one message the sandbox accepted (200, `result: true`), as
//! `GET /_sandbox/messages` lists them and [`crate::RunningSandbox::subscribe`] publishes them.
//!
//! This is the record a later webhook feature would post delivery events about: it carries
//! the id the client was given and the phone the events would name.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// One accepted message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AcceptedMessage {
    /// The id returned to the client (a fresh UUID v4), as Interakt's webhooks would name it.
    pub id: Uuid,
    /// When it arrived, RFC 3339 in UTC with milliseconds (`2026-01-01T10:00:00.123+00:00`).
    #[serde(with = "rfc3339_millis")]
    pub received_at: OffsetDateTime,
    /// The same instant in Unix milliseconds, for arithmetic in tests.
    pub received_ms: u64,
    /// The body's `countryCode`.
    pub country_code: String,
    /// The body's `phoneNumber`.
    pub phone_number: String,
    /// The whole request body, fields in their original order.
    pub request: serde_json::Value,
}

impl AcceptedMessage {
    /// The phone in E.164, `countryCode` + `phoneNumber`.
    pub fn e164(&self) -> String {
        format!("{}{}", self.country_code, self.phone_number)
    }
}

/// Unix milliseconds of a timestamp (0 before 1970, which the clock does not return).
pub(crate) fn unix_ms(at: OffsetDateTime) -> u64 {
    u64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// RFC 3339 that always shows milliseconds (the well-known format drops a zero fraction),
/// read back leniently as any RFC 3339.
mod rfc3339_millis {
    use serde::{Deserialize, Deserializer, Serializer, de, ser};
    use time::format_description::well_known::Rfc3339;
    use time::macros::format_description;
    use time::{OffsetDateTime, UtcOffset};

    pub(super) fn serialize<S: Serializer>(at: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        let format = format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3][offset_hour sign:mandatory]:[offset_minute]"
        );
        let text = at
            .to_offset(UtcOffset::UTC)
            .format(format)
            .map_err(ser::Error::custom)?;
        s.serialize_str(&text)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let text = String::deserialize(d)?;
        OffsetDateTime::parse(&text, &Rfc3339).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn timestamps_always_carry_milliseconds_and_round_trip() {
        let message = AcceptedMessage {
            id: Uuid::nil(),
            received_at: datetime!(2026-01-01 10:00:00 UTC),
            received_ms: unix_ms(datetime!(2026-01-01 10:00:00 UTC)),
            country_code: "+91".into(),
            phone_number: "9999999999".into(),
            request: serde_json::json!({"countryCode": "+91"}),
        };
        let json = serde_json::to_value(&message).unwrap();
        assert_eq!(json["received_at"], "2026-01-01T10:00:00.000+00:00");
        assert_eq!(json["received_ms"], 1_767_261_600_000_u64);
        assert_eq!(json["id"], "00000000-0000-0000-0000-000000000000");
        let back: AcceptedMessage = serde_json::from_value(json).unwrap();
        assert_eq!(back, message);
        assert_eq!(back.e164(), "+919999999999");
    }
}
