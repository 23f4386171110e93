"""Schemathesis hooks for Herald's producer API (SCHEMATHESIS_HOOKS=hooks).

The OpenAPI document names, as formats, the rules JSON Schema cannot state; a fuzzer
needs a generator for each, or every number it makes up is refused as not a real phone.
(A duration's grammar is in the document: its `pattern` is the parser's, exactly; the
formats add only the range. What these generators make must match that pattern.)

- `e164`: a phone number valid for its country code (libphonenumber's metadata);
- `herald-duration-24h`: a duration longer than zero and at most 24h;
- `herald-duration-365d`: a duration longer than zero and at most 365 days (`send_in`,
  `before`);
- `herald-send-at`: an RFC 3339 time with its offset, at most 365 days ahead (`send_at`,
  `not_after`);
- `herald-timezone`: an IANA time zone name (`tz`).

And the cross-field rules the document states in words, which generated positive cases
must respect to be positive at all:

- the `Idempotency-Key` header and the body's `idempotency_key`, when both are sent, are
  equal;
- at most one of `send_at`, `send_in` and (reminders) `before`; a reminder's send time
  (its appointment minus `before`) at most 365 days ahead: a positive reminder with
  `before` gets an appointment tomorrow;
- a raw request on the OTP lane has a `not_after` within 24h (one hour from now);
- a raw request passes RBM's and DLT's limits (a valid countryCode + phoneNumber pair, at
  most 11 suggestions per message, 250 KB...): a positive case's raw `request` is one of the
  Interakt requests in shared/tests/fixtures (the rest of the body stays generated).
"""

import datetime
import json
import pathlib

import schemathesis
from hypothesis import strategies as st
from schemathesis import GenerationMode

# Numbers libphonenumber accepts, from several countries and number plans.
VALID_NUMBERS = [
    "+919999999999",
    "+919876543210",
    "+919321812345",
    "+971501234567",
    "+447911123456",
]

schemathesis.openapi.format(
    "e164",
    st.one_of(
        st.sampled_from(VALID_NUMBERS),
        st.integers(min_value=0, max_value=99_999).map(lambda n: f"+9190000{n:05d}"),
    ),
)

schemathesis.openapi.format(
    "herald-duration-24h",
    st.one_of(
        st.integers(min_value=1, max_value=86_400).map(lambda n: f"{n}s"),
        st.integers(min_value=1, max_value=1_440).map(lambda n: f"{n}m"),
        st.integers(min_value=1, max_value=24).map(lambda n: f"{n}h"),
        st.sampled_from(["1h 30m", "23h 59m 59s", "24h", "90sec", "2 min"]),
    ),
)


schemathesis.openapi.format(
    "herald-duration-365d",
    st.one_of(
        st.integers(min_value=1, max_value=86_400).map(lambda n: f"{n}s"),
        st.integers(min_value=1, max_value=8_760).map(lambda n: f"{n}h"),
        st.integers(min_value=1, max_value=365).map(lambda n: f"{n}days"),
        st.sampled_from(["2h", "1day 2h", "90min", "365d"]),
    ),
)

# Times from now to 300 days ahead, in a few offsets; `now` is read once per run.
_NOW = datetime.datetime.now(datetime.timezone.utc)
_OFFSETS = [datetime.timezone.utc, datetime.timezone(datetime.timedelta(hours=5, minutes=30)),
            datetime.timezone(datetime.timedelta(hours=-7))]
schemathesis.openapi.format(
    "herald-send-at",
    st.builds(
        lambda secs, tz: (_NOW + datetime.timedelta(seconds=secs)).astimezone(tz).replace(microsecond=0).isoformat(),
        st.integers(min_value=-86_400, max_value=300 * 86_400),
        st.sampled_from(_OFFSETS),
    ),
)

schemathesis.openapi.format(
    "herald-timezone",
    st.sampled_from(["Asia/Kolkata", "Europe/London", "America/New_York", "UTC", "Asia/Dubai"]),
)

FIXTURES = pathlib.Path(__file__).resolve().parent.parent.parent / "shared" / "tests" / "fixtures"
# The Interakt guide's requests that Herald accepts as they are (request-curl-example-2.json
# carries a placeholder for its phone number).
VALID_REQUESTS = [
    json.loads((FIXTURES / name).read_text())
    for name in (
        "request-curl-example-1.json",
        "request-standalone-carousel.json",
        "request-template-carousel.json",
    )
]


def _header(case, name):
    for key, value in (case.headers or {}).items():
        if key.lower() == name.lower():
            return value
    return None


@schemathesis.hook
def filter_case(context, case):
    if case.meta is None or case.meta.generation.mode != GenerationMode.POSITIVE:
        return True
    body = case.body if isinstance(case.body, (dict, list)) else None
    items = body if isinstance(body, list) else [body]
    for item in items:
        if isinstance(item, dict) and sum(k in item for k in ("send_at", "send_in", "before")) > 1:
            return False
    header = _header(case, "Idempotency-Key")
    if isinstance(body, dict) and header is not None:
        key = body.get("idempotency_key")
        if key is not None and key != header:
            return False
    return True


@schemathesis.hook
def map_case(context, case):
    if case.meta is None or case.meta.generation.mode != GenerationMode.POSITIVE:
        return case
    for item in case.body if isinstance(case.body, list) else [case.body]:
        _one_time(item)
    if case.operation.path == "/v1/jobs/raw" and isinstance(case.body, dict):
        case.body["request"] = _valid_request(case.body)
        _otp_lane_expires(case.body)
    elif case.operation.path == "/v1/jobs/reminder" and isinstance(case.body, dict):
        _near_appointment(case.body)
    elif case.operation.path == "/v1/jobs/batch" and isinstance(case.body, list):
        for item in case.body:
            if isinstance(item, dict) and item.get("kind") == "raw":
                item["request"] = _valid_request(item)
                _otp_lane_expires(item)
            elif isinstance(item, dict) and item.get("kind") == "reminder":
                _near_appointment(item)
    return case


def _one_time(body):
    # At most one of send_at, send_in and before (the document's `not`): keep the first.
    if isinstance(body, dict):
        given = [k for k in ("send_at", "send_in", "before") if k in body]
        for k in given[1:]:
            del body[k]


def _otp_lane_expires(body):
    # A raw request on the OTP lane needs a not_after within 24h (the document says so in
    # words): one hour from now, sent now.
    if body.get("lane") == "otp":
        for k in ("send_at", "send_in"):
            body.pop(k, None)
        body["not_after"] = (_NOW + datetime.timedelta(hours=1)).replace(microsecond=0).isoformat()


def _near_appointment(body):
    # A reminder `before` its appointment is due then: an appointment tomorrow keeps that
    # within 365 days whatever `before` is (at most 365 days).
    if "before" in body:
        body["date"] = (_NOW + datetime.timedelta(days=1)).date().isoformat()


def _valid_request(body):
    # Deterministic for a given body, so a seeded run is repeatable.
    return json.loads(json.dumps(VALID_REQUESTS[len(json.dumps(body, sort_keys=True)) % len(VALID_REQUESTS)]))
