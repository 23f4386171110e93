//! What the derived OpenAPI document cannot say by itself, added once the routes are known:
//! the batch items' `kind` tag and the raw request's shape.
//!
//! utoipa renders an internally tagged enum as `allOf: [Variant, {kind}]`, and each variant
//! forbids unknown fields (`additionalProperties: false`), so no item could carry its `kind`
//! and every batch would be schema-invalid. Each variant gets a tagged copy instead
//! (`OtpJob`, `BookingJob`, `RawJob`), and `JobSpec` is the `oneOf` of those.
//!
//! Rules that JSON Schema cannot state are named in the document with a `format` (which a
//! fuzzer needs a generator for) or in a description:
//! - `e164`: the number is valid for its country code (libphonenumber's metadata);
//! - `herald-duration-24h`: a duration longer than zero and at most 24h;
//! - the `Idempotency-Key` header and the body's `idempotency_key`, when both are sent, are
//!   equal;
//! - a raw request passes RCS Business Messaging's and DLT's limits
//!   ([`herald_shared::validate`]): pairs of fields, counts across cards, the 250 KB total.

use serde_json::{Value, json};
use utoipa::Modify;
use utoipa::openapi::{OpenApi, RefOr, Schema};

/// The [`Modify`] that completes the document (see the module docs).
pub struct Contract;

impl Modify for Contract {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let schemas = &mut components.schemas;
        // First, so that RawJob below copies it.
        if let Some(raw) = schemas.get_mut("RawSpec") {
            let mut value = serde_json::to_value(&*raw).expect("a schema serializes");
            value["properties"]["request"] = send_request();
            *raw = from_value(value);
        }
        let mut variants = Vec::new();
        for (kind, spec, job) in [
            ("otp", "OtpSpec", "OtpJob"),
            ("booking", "BookingSpec", "BookingJob"),
            ("raw", "RawSpec", "RawJob"),
        ] {
            let Some(schema) = schemas.get(spec) else {
                continue;
            };
            let mut tagged = serde_json::to_value(schema).expect("a schema serializes");
            tagged["properties"]["kind"] = json!({"type": "string", "enum": [kind]});
            if let Some(required) = tagged["required"].as_array_mut() {
                required.insert(0, json!("kind"));
            }
            tagged["description"] =
                json!(format!("A batch item: {spec} with `\"kind\": \"{kind}\"`."));
            schemas.insert(job.to_string(), from_value(tagged));
            variants.push(json!({"$ref": format!("#/components/schemas/{job}")}));
        }
        schemas.insert(
            "JobSpec".to_string(),
            from_value(json!({
                "description": "One job with its `kind`, as a batch item or a bulk line.",
                "oneOf": variants,
            })),
        );
    }
}

/// The Interakt guide's first example: a standalone card with an SMS fallback.
const EXAMPLE_REQUEST: &str =
    include_str!("../../../shared/tests/fixtures/request-curl-example-1.json");

fn from_value(value: Value) -> RefOr<Schema> {
    serde_json::from_value(value).expect("a valid schema")
}

/// Interakt's request body as far as JSON Schema can state it: the fields every request
/// has, their types, and unknown fields kept (they are sent on unchanged).
fn send_request() -> Value {
    let nullable_object = json!({"type": ["object", "null"]});
    let example: Value = serde_json::from_str(EXAMPLE_REQUEST).expect("the example is JSON");
    json!({
        "type": "object",
        "description": "A complete Interakt `POST /rcs/message/` body. Besides the types \
            below, it must pass RCS Business Messaging's and DLT's limits, which JSON Schema \
            cannot state (400 names each broken one): countryCode + phoneNumber is a valid \
            number; `message` (a standalone card or a carousel of 2 to 10 cards) is required \
            with STANDALONE_CAROUSEL and `template` with Template, never both; a card has a \
            title (200 characters at most), a description (2,000) or media (http(s) URLs, \
            2,000); at most 4 suggestions per card and 11 per message, each 1 to 25 \
            characters; SMS fallbacks with a 6-character sender id, 12 to 19 digit DLT ids \
            and variables of 30 characters at most; 250 KB in all.",
        "required": ["countryCode", "phoneNumber", "type"],
        "properties": {
            "countryCode": {"type": "string", "description": "The country calling code with its `+`: `+91`."},
            "phoneNumber": {"type": "string", "description": "The national number: `9999999999`."},
            "type": {"type": "string", "enum": ["STANDALONE_CAROUSEL", "Template"]},
            "message": nullable_object,
            "template": nullable_object,
            "campaignId": {"type": ["string", "null"]},
            "fallback": {"type": ["array", "null"], "items": {"type": "object"}},
        },
        "additionalProperties": true,
        "example": example,
    })
}
