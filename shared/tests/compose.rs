//! Rendering jobs into Interakt requests (`herald_shared::compose`, `Job::render`): the cards,
//! the SMS fallback, the postBack data that never carries a code.

use herald_shared::Job;
use herald_shared::compose::*;
use herald_shared::job::Booking;
use herald_shared::job::DEFAULT_OTP_VALIDITY;
use herald_shared::validate::validate_request;

fn sms() -> SmsSettings {
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
    let job = Job::reminder(booking, &herald_shared::schedule::Zone::default()).unwrap();
    // 08:30 in India on the day of the appointment.
    let request = job.render_at(Some(&sms()), time::macros::datetime!(2026-11-24 03:00 UTC));
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
    let early = job.render_at(None, time::macros::datetime!(2026-11-23 23:00 UTC));
    let title = serde_json::to_value(&early).unwrap()["message"]["richCardDetails"]["standalone"]["content"]["cardTitle"].clone();
    assert_eq!(title, "Reminder: your Haircut today at 10:30");
    let before = job.render_at(None, time::macros::datetime!(2026-11-23 10:00 UTC));
    let title = serde_json::to_value(&before).unwrap()["message"]["richCardDetails"]["standalone"]
        ["content"]["cardTitle"]
        .clone();
    assert_eq!(title, "Reminder: your Haircut tomorrow at 10:30");
    let without = SmsSettings {
        reminder_template_id: None,
        ..sms()
    };
    assert!(
        job.render_at(
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
    let request = job.render(Some(&sms()));
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
    assert!(job.render(None).fallback.is_none());
}
