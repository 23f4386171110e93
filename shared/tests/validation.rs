//! Every validation rule, one mutation of a valid guide body each: the error names the
//! field path and the limit.

use std::path::PathBuf;

use herald_shared::validate::validate_request;
use herald_shared::wire::{self, SendRequest};
use serde_json::{Value, json};

fn base() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/request-standalone-carousel.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

const CARD: &str = "/message/richCardDetails/standalone/content";

fn suggestion(text: &str, data: &str) -> Value {
    json!({"reply": {"plainText": text, "postBack": {"data": data}}})
}

fn card(title: &str) -> Value {
    json!({"cardTitle": title})
}

/// Applies `mutate` to the valid base body and returns the validation error text.
fn violation(mutate: impl FnOnce(&mut Value)) -> String {
    let mut body = base();
    mutate(&mut body);
    let request: SendRequest = wire::decode_value(body).expect("mutation keeps the shape");
    validate_request(&request)
        .expect_err("mutation must be invalid")
        .to_string()
}

fn set(body: &mut Value, pointer: &str, value: Value) {
    *body
        .pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{pointer}")) = value;
}

#[test]
fn the_base_body_is_valid() {
    let request: SendRequest = wire::decode_value(base()).unwrap();
    validate_request(&request).unwrap();
}

#[test]
fn each_rule_names_its_path_and_limit() {
    type Mutation = Box<dyn FnOnce(&mut Value)>;
    let cases: Vec<(&str, &str, Mutation)> = vec![
        (
            "title over 200",
            "content.cardTitle: is 201 characters; the limit is 200",
            Box::new(|b| set(b, &format!("{CARD}/cardTitle"), json!("t".repeat(201)))),
        ),
        (
            "title of 200 multi-byte chars is fine unless 201",
            "cardTitle: is 201 characters",
            Box::new(|b| set(b, &format!("{CARD}/cardTitle"), json!("é".repeat(201)))),
        ),
        (
            "description over 2000",
            "content.cardDescription: is 2001 characters; the limit is 2000",
            Box::new(|b| {
                set(
                    b,
                    &format!("{CARD}/cardDescription"),
                    json!("d".repeat(2001)),
                )
            }),
        ),
        (
            "five suggestions",
            "content.suggestions: has 5 suggestions; the limit is 4 per card",
            Box::new(|b| {
                set(
                    b,
                    &format!("{CARD}/suggestions"),
                    json!(vec![suggestion("a", "b"); 5]),
                )
            }),
        ),
        (
            "suggestion text over 25",
            "suggestions[0].reply.plainText: is 26 characters; the limit is 25",
            Box::new(|b| {
                set(
                    b,
                    &format!("{CARD}/suggestions/0"),
                    suggestion(&"s".repeat(26), "x"),
                )
            }),
        ),
        (
            "empty suggestion text",
            "suggestions[1].reply.plainText: must not be empty",
            Box::new(|b| set(b, &format!("{CARD}/suggestions/1"), suggestion(" ", "x"))),
        ),
        (
            "postBack over 2048",
            "suggestions[0].reply.postBack.data: is 2049 characters; the limit is 2048",
            Box::new(|b| {
                set(
                    b,
                    &format!("{CARD}/suggestions/0"),
                    suggestion("ok", &"p".repeat(2049)),
                )
            }),
        ),
        (
            "empty card",
            "standalone.content: needs at least one of cardTitle, cardDescription, cardMedia",
            Box::new(|b| set(b, CARD, json!({}))),
        ),
        (
            "media URL not http",
            "cardMedia.contentInfo.fileUrl: must be an http:// or https:// URL",
            Box::new(|b| {
                set(
                    b,
                    &format!("{CARD}/cardMedia/contentInfo/fileUrl"),
                    json!("ftp://x.example/a.png"),
                )
            }),
        ),
        (
            "media URL over 2000",
            "fileUrl: is 2001 characters; the limit is 2000",
            Box::new(|b| {
                set(
                    b,
                    &format!("{CARD}/cardMedia/contentInfo/fileUrl"),
                    json!(format!("https://x.example/{}", "a".repeat(1983))),
                )
            }),
        ),
        (
            "media URL with no host",
            "fileUrl: has no host",
            Box::new(|b| {
                set(
                    b,
                    &format!("{CARD}/cardMedia/contentInfo/fileUrl"),
                    json!("https://"),
                )
            }),
        ),
        (
            "one-card carousel",
            "carousel.contents: has 1 cards; a carousel has 2 to 10",
            Box::new(|b| {
                set(
                    b,
                    "/message/richCardDetails",
                    json!({"carousel": {"cardWidth": "MEDIUM_WIDTH", "contents": [card("a")]}}),
                )
            }),
        ),
        (
            "eleven-card carousel",
            "carousel.contents: has 11 cards; a carousel has 2 to 10",
            Box::new(|b| {
                set(
                    b,
                    "/message/richCardDetails",
                    json!({"carousel": {"cardWidth": "SMALL_WIDTH", "contents": vec![card("a"); 11]}}),
                )
            }),
        ),
        (
            "12 suggestions across a carousel",
            "has 12 suggestions in all; the limit is 11 per message",
            Box::new(|b| {
                let c = json!({"cardTitle": "x", "suggestions": vec![suggestion("a", "b"); 4]});
                set(
                    b,
                    "/message/richCardDetails",
                    json!({"carousel": {"cardWidth": "SMALL_WIDTH", "contents": [c.clone(), c.clone(), c]}}),
                )
            }),
        ),
        (
            "neither standalone nor carousel",
            "message.richCardDetails: must hold a standalone card or a carousel",
            Box::new(|b| set(b, "/message/richCardDetails", json!({}))),
        ),
        (
            "missing message",
            "message: is required when type is \"STANDALONE_CAROUSEL\"",
            Box::new(|b| {
                b.as_object_mut().unwrap().remove("message");
            }),
        ),
        (
            "template without template",
            "template: is required when type is \"Template\"",
            Box::new(|b| set(b, "/type", json!("Template"))),
        ),
        (
            "fallback channel",
            "fallback[0].channel: is \"whatsapp\"; the only fallback channel is \"sms\"",
            Box::new(|b| set(b, "/fallback/0/channel", json!("whatsapp"))),
        ),
        (
            "pe_id not numeric",
            "fallback[0].pe_id: is \"12011591955993729ab\"; a DLT id is 12 to 19 digits",
            Box::new(|b| set(b, "/fallback/0/pe_id", json!("12011591955993729ab"))),
        ),
        (
            "dlt_te_id too short",
            "fallback[0].content.dlt_te_id: is \"12345678901\"; a DLT id is 12 to 19 digits",
            Box::new(|b| set(b, "/fallback/0/content/dlt_te_id", json!("12345678901"))),
        ),
        (
            "dlt_te_id too long",
            "dlt_te_id: is \"11071740121646761720\"; a DLT id is 12 to 19 digits",
            Box::new(|b| {
                set(
                    b,
                    "/fallback/0/content/dlt_te_id",
                    json!("11071740121646761720"),
                )
            }),
        ),
        (
            "more variables than placeholders",
            "fallback[0].content.variables: has 2 values but the message has {{1}}",
            Box::new(|b| set(b, "/fallback/0/content/variables", json!(["1", "2"]))),
        ),
        (
            "placeholder gap",
            "has 2 values but the message has {{1}}, {{3}}",
            Box::new(|b| {
                set(b, "/fallback/0/content/message", json!("{{1}} and {{3}}"));
                set(b, "/fallback/0/content/variables", json!(["1", "2"]));
            }),
        ),
        (
            "variable over 30",
            "fallback[0].content.variables[0]: is 31 characters; the limit is 30",
            Box::new(|b| set(b, "/fallback/0/content/variables", json!(["v".repeat(31)]))),
        ),
        (
            "sender id not 6",
            "fallback[0].sender_id: is \"INTERAKT\"; a DLT header is 6 letters or digits",
            Box::new(|b| set(b, "/fallback/0/sender_id", json!("INTERAKT"))),
        ),
        (
            "bad phone",
            "countryCode+phoneNumber: is not a valid number for its country code",
            Box::new(|b| set(b, "/phoneNumber", json!("12345"))),
        ),
        (
            "country code mismatch",
            "countryCode+phoneNumber",
            Box::new(|b| {
                set(b, "/countryCode", json!("+9"));
                set(b, "/phoneNumber", json!("19999999999"));
            }),
        ),
        (
            "over 250 KB",
            ".: is ",
            Box::new(|b| {
                b["padding"] = json!("x".repeat(260_000));
            }),
        ),
    ];
    for (name, expected, mutate) in cases {
        let error = violation(mutate);
        assert!(
            error.contains(expected),
            "{name}: expected {expected:?} in {error:?}"
        );
    }
}

#[test]
fn all_violations_are_reported_at_once() {
    let error = violation(|b| {
        set(b, &format!("{CARD}/cardTitle"), json!("t".repeat(201)));
        set(b, "/fallback/0/channel", json!("email"));
    });
    assert!(
        error.contains("cardTitle") && error.contains("channel"),
        "{error}"
    );
}

#[test]
fn limits_are_inclusive() {
    let mut body = base();
    set(
        &mut body,
        &format!("{CARD}/cardTitle"),
        json!("t".repeat(200)),
    );
    set(
        &mut body,
        &format!("{CARD}/cardDescription"),
        json!("d".repeat(2000)),
    );
    set(
        &mut body,
        &format!("{CARD}/suggestions"),
        json!(vec![suggestion(&"s".repeat(25), &"p".repeat(2048)); 4]),
    );
    set(
        &mut body,
        "/fallback/0/content/variables",
        json!(["v".repeat(30)]),
    );
    set(&mut body, "/fallback/0/pe_id", json!("120115919559"));
    let request: SendRequest = wire::decode_value(body).unwrap();
    validate_request(&request).unwrap();
}
