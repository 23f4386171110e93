//! Renders OTP, booking and reminder jobs into Interakt requests: the rich card and, when
//! DLT settings are configured, the SMS fallback.
//!
//! The SMS texts must match the DLT-registered templates character for character, so they
//! come from configuration ([`SmsSettings`]); only the card wording lives here.

use std::time::Duration;

use crate::job::payload::{Booking, Otp, Reminder};
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
