//! Renders OTP, booking and reminder jobs into Interakt requests: the rich card and, when
//! DLT settings are configured, the SMS fallback.
//!
//! The SMS texts must match the DLT-registered templates character for character, so they
//! come from configuration ([`SmsSettings`]); only the card wording lives here.

use std::time::Duration;

use crate::job::{Booking, Job, Otp, Payload, Reminder};
use crate::phone::Phone;
use crate::wire::{
    CardContent, CardMedia, CardOrientation, ContentInfo, Extra, MediaHeight, MessageType,
    PostBack, RichCardDetails, RichMessage, SendRequest, SmsContent, SmsFallback, StandaloneCard,
    Suggestion, SuggestionBody,
};

/// Default DLT text of the OTP SMS; `{{1}}` is the code.
pub const DEFAULT_OTP_SMS_TEXT: &str =
    "Dear Customer, {{1}} is your OTP. For your security, do not share this code.";
/// Default DLT text of the booking SMS; service, date, time, booking id.
pub const DEFAULT_BOOKING_SMS_TEXT: &str =
    "Your booking for {{1}} on {{2}} at {{3}} is confirmed. Booking ID: {{4}}";

/// Default DLT text of the reminder SMS; service, date, time, booking id.
pub const DEFAULT_REMINDER_SMS_TEXT: &str =
    "Reminder: your booking for {{1}} on {{2}} at {{3}}. Booking ID: {{4}}";

/// The SMS fallback as DLT registered it: one sender, one entity, a template per message.
#[derive(Clone, Debug, PartialEq)]
pub struct SmsSettings {
    pub sender_id: String,
    pub pe_id: String,
    pub provider_name: String,
    pub otp_template_id: String,
    pub booking_template_id: String,
    pub otp_text: String,
    pub booking_text: String,
    /// The reminder's template (`DLT_REMINDER_TEMPLATE_ID`): optional, so deployments from
    /// before reminders keep working; without it reminders go without SMS fallback.
    pub reminder_template_id: Option<String>,
    pub reminder_text: String,
}

/// The request a job sends, as of `now` (a reminder says "today" or "tomorrow" where its
/// customer is). `sms` is `None` when no DLT fallback is configured.
pub fn render_at(job: &Job, sms: Option<&SmsSettings>, now: time::OffsetDateTime) -> SendRequest {
    match &job.payload {
        Payload::Otp(otp) => {
            let valid_for = job.not_after.map(|deadline| deadline - job.created_at);
            otp_request(otp, valid_for.and_then(|d| d.try_into().ok()), sms)
        }
        Payload::Booking(booking) => booking_request(booking, sms),
        Payload::Reminder(reminder) => {
            let today = crate::schedule::Zone::named(&reminder.tz)
                .ok()
                .and_then(|zone| zone.local_date(now));
            reminder_request(reminder, today, sms)
        }
        Payload::Raw { request } => (**request).clone(),
    }
}

/// The request a job sends now: [`render_at`] with the clock.
pub fn render(job: &Job, sms: Option<&SmsSettings>) -> SendRequest {
    render_at(job, sms, time::OffsetDateTime::now_utc())
}

/// An OTP card. The code appears in the card text and the SMS, never in postBack data.
pub fn otp_request(
    otp: &Otp,
    valid_for: Option<Duration>,
    sms: Option<&SmsSettings>,
) -> SendRequest {
    let code = otp.code.expose();
    let validity = match valid_for {
        Some(d) if d.as_secs() >= 120 => format!(" It is valid for {} minutes.", d.as_secs() / 60),
        Some(d) => format!(" It is valid for {} seconds.", d.as_secs()),
        None => String::new(),
    };
    let card = CardContent {
        card_title: Some("Your verification code".into()),
        card_description: Some(format!(
            "{code} is your one-time password.{validity} Do not share it with anyone."
        )),
        ..CardContent::default()
    };
    let fallback =
        sms.map(|s| sms_fallback(s, &s.otp_template_id, &s.otp_text, vec![code.clone()]));
    standalone(&otp.phone, card, fallback)
}

/// A booking confirmation card with "View details" and "Cancel booking" replies whose
/// postBack data (`booking_B123`, `cancel_B123`) comes back through webhooks.
pub fn booking_request(booking: &Booking, sms: Option<&SmsSettings>) -> SendRequest {
    let Booking {
        booking_id,
        service,
        date,
        time,
        ..
    } = booking;
    let card = booking_card(
        booking,
        format!("Booking confirmed: {service}"),
        format!(
            "Your booking for {service} on {date} at {time} is confirmed. Booking ID: {booking_id}"
        ),
        "View details",
    );
    let fallback = sms.map(|s| {
        sms_fallback(
            s,
            &s.booking_template_id,
            &s.booking_text,
            booking_variables(booking),
        )
    });
    standalone(&booking.phone, card, fallback)
}

/// A reminder card ("Reminder: your Haircut today at 10:30") with "View booking" and
/// "Cancel booking" replies whose postBack data names the booking (`booking_B123`,
/// `cancel_B123`). `today` is the date where the customer is when it goes out (`None`:
/// unknown, the date is written out). The SMS fallback needs the reminder's own template:
/// without `DLT_REMINDER_TEMPLATE_ID` the reminder has none.
pub fn reminder_request(
    reminder: &Reminder,
    today: Option<time::Date>,
    sms: Option<&SmsSettings>,
) -> SendRequest {
    let booking = &reminder.booking;
    let Booking {
        booking_id,
        service,
        date,
        time,
        ..
    } = booking;
    let day = time::Date::parse(
        date,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok();
    let when = match (day, today) {
        (Some(day), Some(today)) if day == today => format!("today at {time}"),
        (Some(day), Some(today)) if today.next_day() == Some(day) => {
            format!("tomorrow at {time}")
        }
        _ => format!("on {date} at {time}"),
    };
    let card = booking_card(
        booking,
        format!("Reminder: your {service} {when}"),
        format!("Your booking for {service} on {date} at {time}. Booking ID: {booking_id}"),
        "View booking",
    );
    let fallback = sms.and_then(|s| {
        let template = s.reminder_template_id.as_ref()?;
        Some(sms_fallback(
            s,
            template,
            &s.reminder_text,
            booking_variables(booking),
        ))
    });
    standalone(&booking.phone, card, fallback)
}

/// The DLT variables of a booking's and a reminder's SMS: service, date, time, booking id.
fn booking_variables(booking: &Booking) -> Vec<String> {
    vec![
        booking.service.clone(),
        booking.date.clone(),
        booking.time.clone(),
        booking.booking_id.clone(),
    ]
}

/// A booking's card: `title`, `description`, its picture, and two replies, `view` and
/// "Cancel booking", whose postBack data names the booking.
fn booking_card(booking: &Booking, title: String, description: String, view: &str) -> CardContent {
    let booking_id = &booking.booking_id;
    let reply = |text: &str, data: String| Suggestion {
        reply: Some(SuggestionBody {
            plain_text: text.into(),
            post_back: PostBack {
                data,
                extra: Extra::new(),
            },
            extra: Extra::new(),
        }),
        action: None,
        extra: Extra::new(),
    };
    CardContent {
        card_title: Some(title),
        card_description: Some(description),
        card_media: booking.image_url.as_ref().map(|url| CardMedia {
            media_height: Some(MediaHeight::Medium),
            content_info: ContentInfo {
                file_url: url.clone(),
                thumbnail_url: None,
                extra: Extra::new(),
            },
            extra: Extra::new(),
        }),
        suggestions: Some(vec![
            reply(view, format!("booking_{booking_id}")),
            reply("Cancel booking", format!("cancel_{booking_id}")),
        ]),
        extra: Extra::new(),
    }
}

fn standalone(phone: &str, content: CardContent, fallback: Option<SmsFallback>) -> SendRequest {
    // Jobs hold numbers validated at enqueue, in E.164: splitting needs no more checking
    // (`Phone::split_e164`). A failure here means a corrupted job, which validation of the
    // rendered request then reports against countryCode+phoneNumber.
    let (country_code, phone_number) = match Phone::split_e164(phone) {
        Ok(p) => (p.country_code, p.national_number),
        Err(_) => (String::new(), phone.to_string()),
    };
    SendRequest {
        country_code,
        phone_number,
        message: Some(RichMessage {
            rich_card_details: RichCardDetails {
                standalone: Some(StandaloneCard {
                    card_orientation: Some(CardOrientation::Vertical),
                    thumbnail_image_alignment: None,
                    content,
                    extra: Extra::new(),
                }),
                carousel: None,
                extra: Extra::new(),
            },
            extra: Extra::new(),
        }),
        template: None,
        message_type: MessageType::StandaloneCarousel,
        campaign_id: None,
        fallback: fallback.map(|f| vec![f]),
        extra: Extra::new(),
    }
}

fn sms_fallback(
    s: &SmsSettings,
    template_id: &str,
    text: &str,
    variables: Vec<String>,
) -> SmsFallback {
    SmsFallback {
        channel: "sms".into(),
        sender_id: s.sender_id.clone(),
        pe_id: s.pe_id.clone(),
        provider_name: s.provider_name.clone(),
        content: SmsContent {
            message: text.into(),
            dlt_te_id: template_id.into(),
            variables,
            extra: Extra::new(),
        },
        extra: Extra::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::DEFAULT_OTP_VALIDITY;
    use crate::validate::validate_request;

    pub(crate) fn sms() -> SmsSettings {
        SmsSettings {
            sender_id: "HERALD".into(),
            pe_id: "1201159195599372920".into(),
            provider_name: "default".into(),
            otp_template_id: "1107174012164676172".into(),
            booking_template_id: "1107174012164676173".into(),
            otp_text: DEFAULT_OTP_SMS_TEXT.into(),
            booking_text: DEFAULT_BOOKING_SMS_TEXT.into(),
            reminder_template_id: Some("1107174012164676174".into()),
            reminder_text: DEFAULT_REMINDER_SMS_TEXT.into(),
        }
    }

    #[test]
    fn a_reminder_says_today_where_its_customer_is_and_names_the_booking() {
        let booking = Booking {
            phone: "+919999999999".into(),
            booking_id: "B123".into(),
            service: "Haircut".into(),
            date: "2026-11-24".into(),
            time: "10:30".into(),
            image_url: None,
        };
        let job = Job::reminder(booking, &crate::schedule::Zone::default()).unwrap();
        // 08:30 in India on the day of the appointment.
        let request = render_at(
            &job,
            Some(&sms()),
            time::macros::datetime!(2026-11-24 03:00 UTC),
        );
        validate_request(&request).unwrap();
        let json = serde_json::to_value(&request).unwrap();
        let card = &json["message"]["richCardDetails"]["standalone"]["content"];
        assert_eq!(card["cardTitle"], "Reminder: your Haircut today at 10:30");
        assert_eq!(card["suggestions"][0]["reply"]["plainText"], "View booking");
        assert_eq!(
            card["suggestions"][0]["reply"]["postBack"]["data"],
            "booking_B123"
        );
        assert_eq!(
            card["suggestions"][1]["reply"]["postBack"]["data"],
            "cancel_B123"
        );
        assert_eq!(
            json["fallback"][0]["content"]["dlt_te_id"],
            "1107174012164676174"
        );
        assert_eq!(
            json["fallback"][0]["content"]["variables"],
            serde_json::json!(["Haircut", "2026-11-24", "10:30", "B123"])
        );
        // 23:00 UTC on the 23rd is 04:30 on the 24th in India: still today there.
        let early = render_at(&job, None, time::macros::datetime!(2026-11-23 23:00 UTC));
        let title = serde_json::to_value(&early).unwrap()["message"]["richCardDetails"]["standalone"]["content"]["cardTitle"].clone();
        assert_eq!(title, "Reminder: your Haircut today at 10:30");
        let before = render_at(&job, None, time::macros::datetime!(2026-11-23 10:00 UTC));
        let title = serde_json::to_value(&before).unwrap()["message"]["richCardDetails"]["standalone"]["content"]["cardTitle"].clone();
        assert_eq!(title, "Reminder: your Haircut tomorrow at 10:30");
        let without = SmsSettings {
            reminder_template_id: None,
            ..sms()
        };
        assert!(
            render_at(
                &job,
                Some(&without),
                time::macros::datetime!(2026-11-24 03:00 UTC)
            )
            .fallback
            .is_none(),
            "no reminder template: no SMS fallback"
        );
    }

    #[test]
    fn otp_request_is_valid_and_keeps_the_code_out_of_postbacks() {
        let job = Job::otp("+14155552671", "987654", DEFAULT_OTP_VALIDITY).unwrap();
        let request = render(&job, Some(&sms()));
        validate_request(&request).unwrap();
        assert_eq!(request.country_code, "+1");
        assert_eq!(request.phone_number, "4155552671");
        let json = serde_json::to_value(&request).unwrap();
        let card = &json["message"]["richCardDetails"]["standalone"]["content"];
        assert!(card["cardDescription"].as_str().unwrap().contains("987654"));
        assert!(
            card["cardDescription"]
                .as_str()
                .unwrap()
                .contains("10 minutes")
        );
        assert!(
            card.get("suggestions").is_none(),
            "no postBack can carry the code"
        );
        assert_eq!(json["fallback"][0]["content"]["variables"][0], "987654");
        assert_eq!(
            json["fallback"][0]["content"]["dlt_te_id"],
            "1107174012164676172"
        );
    }

    #[test]
    fn booking_request_carries_postbacks_and_the_fallback_variables() {
        let booking = Booking {
            phone: "+919999999999".into(),
            booking_id: "B123".into(),
            service: "Haircut".into(),
            date: "2026-11-24".into(),
            time: "10:30".into(),
            image_url: Some("https://example.com/haircut.jpg".into()),
        };
        let request = booking_request(&booking, Some(&sms()));
        validate_request(&request).unwrap();
        let json = serde_json::to_value(&request).unwrap();
        let card = &json["message"]["richCardDetails"]["standalone"]["content"];
        assert_eq!(
            card["suggestions"][1]["reply"]["postBack"]["data"],
            "cancel_B123"
        );
        assert_eq!(
            card["cardMedia"]["contentInfo"]["fileUrl"],
            "https://example.com/haircut.jpg"
        );
        assert_eq!(
            json["fallback"][0]["content"]["variables"],
            serde_json::json!(["Haircut", "2026-11-24", "10:30", "B123"])
        );
    }

    #[test]
    fn no_sms_settings_means_no_fallback() {
        let job = Job::otp("+919999999999", "1234", DEFAULT_OTP_VALIDITY).unwrap();
        assert!(render(&job, None).fallback.is_none());
    }
}
