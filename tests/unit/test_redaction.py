"""The one redaction rule: secrets out of upstream text, controls removed, length bounded."""

from __future__ import annotations

import base64
import urllib.parse

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from gloo_stream.client.auth import BearerAuth, ClientCredentialsAuth, redactor_for
from gloo_stream.errors import BadRequestError, ServerError, error_from_response
from gloo_stream.redaction import (
    REASON_LIMIT,
    REDACTED,
    Redactor,
    StreamScrubber,
    basic_credential,
    sanitize_reason,
    upstream_reason,
)

KEY = "sk-live-4f9a/8b+c=="
TOKEN = "eyJhbGciOi.token-value"


def test_every_form_a_secret_travels_in_is_redacted() -> None:
    redactor = Redactor([KEY, None, ""])
    for form in (
        KEY,
        KEY.replace("/", "\\/"),  # inside a JSON string, escaped
        urllib.parse.quote(KEY, safe=""),
        urllib.parse.quote_plus(KEY, safe=""),
    ):
        assert redactor.text(f"got <{form}> back") == f"got <{REDACTED}> back"
    assert Redactor().text(KEY) == KEY
    assert not Redactor([None, ""])
    assert "sk-" not in repr(redactor)


def test_a_longer_secret_containing_a_shorter_one_goes_whole() -> None:
    redactor = Redactor(["abcd", "abcd-efgh"])
    assert redactor.text("x abcd-efgh y abcd") == f"x {REDACTED} y {REDACTED}"


def test_decoded_json_is_redacted_in_keys_and_values() -> None:
    value = {"detail": [{"input": f"Bearer {TOKEN}", TOKEN: 1, "n": 3}], "ok": None}
    redacted = Redactor([TOKEN]).value(value)
    assert redacted == {
        "detail": [{"input": f"Bearer {REDACTED}", REDACTED: 1, "n": 3}],
        "ok": None,
    }


def test_reason_loses_controls_and_invisible_characters() -> None:
    text = "bad\x1b[2J value\r\n\tthere\u202e\u200b\x00 now\x7f"
    assert sanitize_reason(text, Redactor()) == "bad[2J value there now"


def test_reason_is_bounded_and_a_cut_never_leaves_half_a_secret() -> None:
    secret = "s" * 20
    text = "x" * (REASON_LIMIT - 10) + secret + "y" * 50
    reason = sanitize_reason(text, Redactor([secret]))
    assert len(reason) == REASON_LIMIT
    assert reason.endswith("…")
    assert "sssss" not in reason
    assert REDACTED[:5] in reason


def test_a_secret_split_by_a_control_character_is_still_found() -> None:
    assert sanitize_reason(f"key {KEY[:5]}\x00{KEY[5:]}", Redactor([KEY])) == f"key {REDACTED}"


@settings(max_examples=200, deadline=None)
@given(
    before=st.text(max_size=400),
    after=st.text(max_size=400),
    secret=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.~+/=", min_size=8, max_size=40),
    limit=st.integers(min_value=20, max_value=500),
)
def test_no_reason_ever_holds_the_secret(before: str, after: str, secret: str, limit: int) -> None:
    reason = sanitize_reason(before + secret + after, Redactor([secret]), limit)
    assert secret not in reason
    assert len(reason) <= limit
    assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in reason)


def test_upstream_reason_reads_the_common_error_shapes() -> None:
    none = Redactor()
    fastapi = (
        '{"detail":[{"type":"missing","loc":["body","model"],"msg":"Field required"},'
        '{"loc":["body","messages",0],"msg":"Input should be a valid dictionary"}]}'
    )
    assert upstream_reason(fastapi, none) == (
        "body.model: Field required; body.messages.0: Input should be a valid dictionary"
    )
    assert upstream_reason('{"detail": "model not found"}', none) == "model not found"
    assert upstream_reason('{"error": {"message": "bad tool", "type": "x"}}', none) == "bad tool"
    assert upstream_reason('{"error": "Rate limit exceeded"}', none) == "Rate limit exceeded"
    assert upstream_reason('{"message": "nope"}', none) == "nope"
    assert upstream_reason("plain\ntext", none) == "plain text"
    assert upstream_reason('{"other": 1}', none) == ""
    assert upstream_reason("", none) == ""
    assert upstream_reason("[1, 2]", none) == ""


def test_library_errors_redact_what_the_request_carried() -> None:
    body = (
        '{"detail":[{"loc":["header","authorization"],"msg":"bad: Bearer '
        + TOKEN
        + '","input":"Bearer '
        + TOKEN
        + '"}]}'
    )
    error = error_from_response(422, body, {}, now=0.0, redactor=Redactor([TOKEN]))
    assert isinstance(error, BadRequestError)
    assert TOKEN not in str(error)
    assert TOKEN not in error.body
    assert error.detail[0]["input"] == f"Bearer {REDACTED}"
    assert error.detail[0]["loc"] == ["header", "authorization"]
    server = error_from_response(
        500, f"oops {TOKEN}\x1b[31m", {}, now=0.0, redactor=Redactor([TOKEN])
    )
    assert isinstance(server, ServerError)
    assert str(server) == f"API error (500): oops {REDACTED}[31m"


def test_auth_objects_name_their_secrets() -> None:
    request = httpx.Request("POST", "http://x/", headers={"Authorization": f"Bearer {TOKEN}"})
    assert redactor_for(BearerAuth(KEY)).text(KEY) == REDACTED
    assert redactor_for(httpx.BasicAuth("u", "p"), request).text(TOKEN) == REDACTED
    oauth = ClientCredentialsAuth("cid", "client-secret-1", "http://x/token")
    oauth.cache.store(TOKEN, 3600, 0.0)
    redactor = redactor_for(oauth)
    basic = base64.b64encode(b"cid:client-secret-1").decode()
    assert basic == basic_credential("cid", "client-secret-1")
    for secret in ("client-secret-1", basic, TOKEN):
        assert redactor.text(f"[{secret}]") == f"[{REDACTED}]"


def test_scrubbers_share_their_redactors_patterns_and_a_new_secret_gets_new_ones() -> None:
    redactor = Redactor(["sk-live-0123456789abcdef"])
    first, second = StreamScrubber(redactor), StreamScrubber(redactor)
    assert first._heads is second._heads  # built once per redactor, not per stream
    frame = b'data: {"choices":[{"delta":{"content":"key sk-live-0123456789abcdef"}}]}\n\n'
    for scrubber in (first, second):
        sent = b"".join(scrubber.relay([("key sk-live-0123456789abcdef", frame)]))
        assert b"sk-live-0123456789abcdef" not in sent
        assert b"[redacted]" in sent
    wider = redactor.with_secrets(["tok-9876543210"])
    later = StreamScrubber(wider)
    assert later._heads is not first._heads
    frame = b'data: {"choices":[{"delta":{"content":"tok-9876543210"}}]}\n\n'
    assert b"tok-9876543210" not in b"".join(later.relay([("tok-9876543210", frame)]))
