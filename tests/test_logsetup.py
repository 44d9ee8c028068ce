"""The redaction every log line goes through."""

from __future__ import annotations

from credhelper.logsetup import redact, register_secret


def test_key_ids_are_masked_and_secrets_hidden() -> None:
    line = (
        "key ASIAIOSFODNN7EXAMPLE secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY "
        "role arn:aws:sts::123456789012:assumed-role/BedrockAccessRole/credhelper-alice"
    )
    shown = redact(line)
    assert "ASIA…MPLE" in shown and "ASIAIOSFODNN7EXAMPLE" not in shown
    assert "wJalrXUtnFEMI" not in shown
    assert "assumed-role/BedrockAccessRole/credhelper-alice" in shown


def test_registered_secrets_are_hidden_whatever_their_shape() -> None:
    register_secret("short-but-secret-value")
    assert "short-but-secret-value" not in redact("token=short-but-secret-value;")
