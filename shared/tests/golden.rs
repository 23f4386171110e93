//! Golden tests: every JSON body of Interakt's integration guide decodes into the wire model
//! and encodes back to the same JSON value, and fields the model has no name for survive.

use std::path::PathBuf;

use herald_shared::validate::validate_request;
use herald_shared::wire::{
    self, EntityType, SendRequest, SendResponse, WebhookEvent, WebhookEventType,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Decodes `name` as `T`, re-encodes it, and compares the two as JSON values.
fn round_trip<T: DeserializeOwned + Serialize>(name: &str) -> T {
    let bytes = fixture(name);
    let original: Value = serde_json::from_slice(&bytes).unwrap();
    let decoded: T = wire::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    let encoded = serde_json::to_value(&decoded).unwrap();
    assert_eq!(encoded, original, "{name} does not round-trip");
    decoded
}

#[test]
fn every_request_body_of_the_guide_round_trips_and_validates() {
    for name in [
        "request-standalone-carousel.json",
        "request-curl-example-1.json",
        "request-template-carousel.json",
    ] {
        let request: SendRequest = round_trip(name);
        validate_request(&request).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    // The guide's test command keeps the placeholder `YOUR_TEST_NUMBER`: it round-trips,
    // and validation refuses it for the right reason.
    let placeholder: SendRequest = round_trip("request-curl-example-2.json");
    let err = validate_request(&placeholder).unwrap_err();
    assert_eq!(err.violations[0].path, "countryCode+phoneNumber");
}

#[test]
fn template_body_keeps_its_fields() {
    let request: SendRequest = round_trip("request-template-carousel.json");
    let template = request.template.unwrap();
    assert_eq!(template.name, "rcs_carousel_variable_template");
    assert_eq!(template.language_code, "en");
    assert_eq!(
        template.carousel_cards.unwrap()[1].body_values,
        ["Hi there Card 2"]
    );
    assert_eq!(
        request.campaign_id.as_deref(),
        Some("a9628c93-4240-49a0-9f9e-9e922094eed1")
    );
    assert_eq!(request.fallback.unwrap()[0].pe_id, "1201159195599372920");
}

#[test]
fn both_responses_round_trip() {
    for name in ["response-standalone.json", "response-template.json"] {
        let response: SendResponse = round_trip(name);
        assert!(response.result);
        assert!(response.id.is_some());
    }
}

#[test]
fn every_webhook_body_round_trips_and_is_classified() {
    let cases = [
        (
            "webhook-user-message-suggestion.json",
            EntityType::UserMessage,
            WebhookEventType::Other,
        ),
        (
            "webhook-user-message-text.json",
            EntityType::UserMessage,
            WebhookEventType::Other,
        ),
        (
            "webhook-server-event-ttl-revoked.json",
            EntityType::ServerEvent,
            WebhookEventType::TtlExpirationRevoked,
        ),
        (
            "webhook-user-event-read.json",
            EntityType::UserEvent,
            WebhookEventType::Read,
        ),
        (
            "webhook-curl-test-1.json",
            EntityType::UserMessage,
            WebhookEventType::Other,
        ),
    ];
    for (name, entity, event) in cases {
        let parsed: WebhookEvent = round_trip(name);
        assert_eq!(parsed.kind(), entity, "{name}");
        assert_eq!(parsed.event_kind(), event, "{name}");
    }
    let tap: WebhookEvent = round_trip("webhook-user-message-suggestion.json");
    assert_eq!(tap.postback_data(), Some("SR1L1C1"));
    let revoked: WebhookEvent = round_trip("webhook-server-event-ttl-revoked.json");
    assert_eq!(revoked.dedup_key(), "event:MxJ079=XIMR725MdGiofzEvA");
}

#[test]
fn unknown_fields_are_sent_on_not_dropped() {
    let mut body: Value =
        serde_json::from_slice(&fixture("request-standalone-carousel.json")).unwrap();
    body["priority"] = json!("high");
    body["message"]["richCardDetails"]["standalone"]["content"]["newRbmField"] =
        json!({"x": [1, 2]});
    body["fallback"][0]["content"]["unicode"] = json!(true);
    let request: SendRequest = wire::decode_value(body.clone()).unwrap();
    assert_eq!(serde_json::to_value(&request).unwrap(), body);
}

#[test]
fn decode_errors_name_the_json_path() {
    let mut body: Value =
        serde_json::from_slice(&fixture("request-standalone-carousel.json")).unwrap();
    body["message"]["richCardDetails"]["standalone"]["cardOrientation"] = json!("DIAGONAL");
    let err = wire::decode_value::<SendRequest>(body).unwrap_err();
    assert_eq!(
        err.path,
        "message.richCardDetails.standalone.cardOrientation"
    );
    assert!(err.reason.contains("DIAGONAL"), "{err}");

    let err = wire::decode::<SendRequest>(br#"{"countryCode": "+91"}"#).unwrap_err();
    assert!(err.to_string().contains("phoneNumber"), "{err}");
    let err = wire::decode::<SendRequest>(b"{not json").unwrap_err();
    assert_eq!(err.path, ".", "{err}");
}
