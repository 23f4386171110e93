//! What the derived OpenAPI document cannot say by itself, added once the routes are known:
//! the batch items' `kind` tag, the raw request's shape, and the duration fields' pattern.
//!
//! Every field whose `format` is a duration (`herald-duration-24h`, `herald-duration-365d`)
//! gets [`herald_shared::duration::pattern`] as its `pattern`: the grammar the parser reads,
//! exactly (tested both ways there), so a request the document calls valid is never refused
//! as "not a duration" and one it calls invalid is never read as one.
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
//! - `herald-send-at`: an RFC 3339 time with its offset at most 365 days ahead;
//!   `herald-duration-365d`: a duration longer than zero and at most 365 days;
//!   `herald-timezone`: an IANA time zone; a reminder's send time (its appointment minus
//!   `before`) at most 365 days ahead. At most one of `send_at`, `send_in` and `before`
//!   is stated in the schema (`not`);
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
        // First, so that the batch items below copy them.
        let pattern = herald_shared::duration::pattern();
        for schema in schemas.values_mut() {
            let mut value = serde_json::to_value(&*schema).expect("a schema serializes");
            if let Some(properties) = value["properties"].as_object_mut() {
                let durations = properties.values_mut().filter(|p| {
                    p["format"]
                        .as_str()
                        .is_some_and(|f| f.starts_with(DURATION_FORMAT))
                });
                for property in durations {
                    property["pattern"] = json!(pattern);
                }
                *schema = from_value(value);
            }
        }
        if let Some(raw) = schemas.get_mut("RawSpec") {
            let mut value = serde_json::to_value(&*raw).expect("a schema serializes");
            value["properties"]["request"] = send_request();
            *raw = from_value(value);
        }
        // At most one of send_at, send_in and (reminders) before.
        for spec in ["BookingSpec", "ReminderSpec", "RawSpec"] {
            if let Some(schema) = schemas.get_mut(spec) {
                let mut value = serde_json::to_value(&*schema).expect("a schema serializes");
                value["not"] = one_time_at_most();
                *schema = from_value(value);
            }
        }
        let mut variants = Vec::new();
        for (kind, spec, job) in [
            ("otp", "OtpSpec", "OtpJob"),
            ("booking", "BookingSpec", "BookingJob"),
            ("reminder", "ReminderSpec", "ReminderJob"),
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

/// The prefix of the formats of duration fields (`herald-duration-24h`).
pub const DURATION_FORMAT: &str = "herald-duration";

/// `send_at`, `send_in` and `before`: at most one of them.
fn one_time_at_most() -> Value {
    json!({"anyOf": [
        {"required": ["send_at", "send_in"]},
        {"required": ["send_at", "before"]},
        {"required": ["send_in", "before"]},
    ]})
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

#[cfg(test)]
mod tests {
    use herald_shared::job::MAX_IDEMPOTENCY_KEY_CHARS;
    use herald_shared::validate::limits;
    use serde_json::Value;

    use crate::api::{MAX_BATCH, openapi_json};

    fn document() -> Value {
        serde_json::from_str(&openapi_json()).unwrap()
    }

    fn walk<'a>(value: &'a Value, found: &mut Vec<(&'a str, &'a Value)>) {
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    found.push((key, v));
                    walk(v, found);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, found)),
            _ => {}
        }
    }

    #[test]
    fn every_ref_resolves() {
        let doc = document();
        let mut found = Vec::new();
        walk(&doc, &mut found);
        let refs: Vec<&str> = found
            .iter()
            .filter(|(key, _)| *key == "$ref")
            .filter_map(|(_, v)| v.as_str())
            .collect();
        assert!(!refs.is_empty());
        for reference in refs {
            let pointer = reference.strip_prefix('#').expect("a local reference");
            assert!(
                doc.pointer(pointer).is_some(),
                "{reference} does not resolve"
            );
        }
    }

    #[test]
    fn every_error_status_answers_an_error_body() {
        // (and a 204 answers nothing)
        let doc = document();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                for (status, response) in operation["responses"].as_object().unwrap() {
                    if status == "204" {
                        assert!(response.get("content").is_none(), "{method} {path} 204");
                        continue;
                    }
                    let schema = &response["content"]["application/json"]["schema"]["$ref"];
                    let body = schema.as_str().unwrap_or_default();
                    let expected: &[&str] = if status.starts_with('2') {
                        &["Accepted", "BatchAccepted", "JobTimeline", "Cancelled"]
                    } else {
                        &["ErrorBody", "BatchRejected"]
                    };
                    assert!(
                        expected.iter().any(|e| body.ends_with(&format!("/{e}"))),
                        "{method} {path} {status} answers {body:?}"
                    );
                }
            }
        }
    }

    /// Every duration field, in every schema (the batch items' copies too), carries the
    /// parser's pattern; `send_in`, `before` and `valid_for` among them.
    #[test]
    fn every_duration_field_carries_the_parsers_pattern() {
        let doc = document();
        let mut fields = Vec::new();
        for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
            for (field, property) in schema["properties"].as_object().into_iter().flatten() {
                let format = property["format"].as_str().unwrap_or_default();
                if format.starts_with(super::DURATION_FORMAT) {
                    assert_eq!(
                        property["pattern"],
                        herald_shared::duration::pattern(),
                        "{name}.{field}"
                    );
                    fields.push(format!("{name}.{field}"));
                }
            }
        }
        for field in [
            "OtpSpec.valid_for",
            "OtpJob.valid_for",
            "BookingSpec.send_in",
            "BookingJob.send_in",
            "ReminderSpec.send_in",
            "ReminderSpec.before",
            "ReminderJob.before",
            "RawSpec.send_in",
            "RawJob.send_in",
        ] {
            assert!(fields.contains(&field.to_string()), "{field} in {fields:?}");
        }
    }

    /// Every enqueue documents the trace context headers it reads (issue 30), and the single
    /// ones the Idempotency-Key header.
    #[test]
    fn every_enqueue_documents_the_trace_context_headers() {
        let doc = document();
        for path in [
            "/v1/jobs/otp",
            "/v1/jobs/booking",
            "/v1/jobs/reminder",
            "/v1/jobs/raw",
            "/v1/jobs/batch",
        ] {
            let names: Vec<&str> = doc["paths"][path]["post"]["parameters"]
                .as_array()
                .unwrap_or_else(|| panic!("{path} has parameters"))
                .iter()
                .filter(|p| p["in"] == "header")
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            assert!(names.contains(&"traceparent"), "{path}: {names:?}");
            assert!(names.contains(&"tracestate"), "{path}: {names:?}");
            assert_eq!(
                names.contains(&"Idempotency-Key"),
                path != "/v1/jobs/batch",
                "{path}: {names:?}"
            );
        }
    }

    /// The attributes' literals are the code's limits (a literal is what utoipa takes).
    #[test]
    fn the_documented_limits_are_the_codes() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        assert_eq!(schemas["BatchRequest"]["maxItems"], MAX_BATCH);
        assert_eq!(schemas["BatchRequest"]["minItems"], 1);
        for spec in ["OtpSpec", "BookingSpec", "RawSpec"] {
            assert_eq!(
                schemas[spec]["properties"]["idempotency_key"]["maxLength"],
                MAX_IDEMPOTENCY_KEY_CHARS,
                "{spec}"
            );
        }
        let header = &doc["paths"]["/v1/jobs/otp"]["post"]["parameters"][0];
        assert_eq!(header["name"], "Idempotency-Key");
        assert_eq!(header["schema"]["maxLength"], MAX_IDEMPOTENCY_KEY_CHARS);
        let variable = limits::DLT_VARIABLE_CHARS.to_string();
        assert!(
            schemas["OtpSpec"]["properties"]["code"]["pattern"]
                .as_str()
                .unwrap()
                .contains(&format!("{{1,{variable}}}"))
        );
        for field in ["booking_id", "service"] {
            assert_eq!(
                schemas["BookingSpec"]["properties"][field]["maxLength"],
                limits::DLT_VARIABLE_CHARS,
                "{field}"
            );
        }
        assert_eq!(
            schemas["BookingSpec"]["properties"]["image_url"]["maxLength"],
            limits::MEDIA_URL_CHARS
        );
        assert_eq!(
            schemas["OtpSpec"]["properties"]["valid_for"]["format"], "herald-duration-24h",
            "the format's name says the maximum: herald_shared::job::MAX_OTP_VALIDITY_TEXT"
        );
        assert_eq!(herald_shared::job::MAX_OTP_VALIDITY_TEXT, "24h");
    }
}
