"""Redaction of tool results: which keys, at any depth, inside JSON text too."""

from __future__ import annotations

import json

from chat_core.tools.results import REDACTED, redact


def test_sensitive_keys_are_redacted_at_any_depth_and_in_any_spelling():
    result = {
        "name": "bot",
        "OpenAI-Api-Key": "sk-1",
        "nodes": [{"input": {"smtp_password": "p", "credentials": {"user": "u"}}}],
        "headers": {"Authorization": "Bearer t", "X-Auth-Token": "t2"},
        "usage": {"total_tokens": 12, "max_tokens": 100},
        "author": "Ada",
    }
    assert redact(result) == {
        "name": "bot",
        "OpenAI-Api-Key": REDACTED,
        "nodes": [{"input": {"smtp_password": REDACTED, "credentials": REDACTED}}],
        "headers": {"Authorization": REDACTED, "X-Auth-Token": REDACTED},
        "usage": {"total_tokens": 12, "max_tokens": 100},  # counts, not tokens
        "author": "Ada",
    }
    assert result["OpenAI-Api-Key"] == "sk-1"  # a copy: the original is left alone


def test_a_result_that_is_json_text_is_redacted_inside():
    text = json.dumps({"client_secret": "s", "ok": True})
    assert json.loads(redact(text)) == {"client_secret": REDACTED, "ok": True}
    assert redact("{not json") == "{not json" and redact("plain words") == "plain words"
    clean = '{"ok":  true}'
    assert redact(clean) is clean  # nothing to hide: the text is left exactly as it was


def test_empty_values_stay_empty_and_other_types_pass(settings_env):
    assert redact({"token": None, "n": 3, "flag": False}) == {"token": None, "n": 3, "flag": False}
    settings_env(redact_keys="ssn")
    assert redact({"SSN": "123", "password": "kept: not listed"}) == {
        "SSN": REDACTED,
        "password": "kept: not listed",
    }
