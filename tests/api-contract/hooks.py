"""Schemathesis hooks for Herald's producer API (SCHEMATHESIS_HOOKS=hooks).

The OpenAPI document names, as formats, the two rules JSON Schema cannot state; a fuzzer
needs a generator for each, or every number it makes up is refused as not a real phone:

- `e164`: a phone number valid for its country code (libphonenumber's metadata);
- `herald-duration-24h`: a duration longer than zero and at most 24h.

And two cross-field rules the document states in words, which generated positive cases
must respect to be positive at all:

- the `Idempotency-Key` header and the body's `idempotency_key`, when both are sent, are
  equal;
- a raw request passes RBM's and DLT's limits (a valid countryCode + phoneNumber pair, at
  most 11 suggestions per message, 250 KB...): a positive case's raw `request` is one of the
  Interakt requests in shared/tests/fixtures (the rest of the body stays generated).
"""

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
    if case.operation.path == "/v1/jobs/raw" and isinstance(case.body, dict):
        case.body["request"] = _valid_request(case.body)
    elif case.operation.path == "/v1/jobs/batch" and isinstance(case.body, list):
        for item in case.body:
            if isinstance(item, dict) and item.get("kind") == "raw":
                item["request"] = _valid_request(item)
    return case


def _valid_request(body):
    # Deterministic for a given body, so a seeded run is repeatable.
    return json.loads(json.dumps(VALID_REQUESTS[len(json.dumps(body, sort_keys=True)) % len(VALID_REQUESTS)]))
