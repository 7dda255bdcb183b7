"""chat_core.secrets: secrets kept in SSM Parameter Store or Secrets Manager (moto), read
through the one settings class: cached for their max age, None (an unset secret) when they
cannot be read.

    .venv/bin/python -m pytest tests/test_secrets.py -q
"""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from chat_core.secrets import read_secret
from chat_core.settings import Settings
from moto import mock_aws


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.Session]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        parameters.clear_caches()  # Powertools caches across tests; start each one empty
        yield boto3.Session(region_name="us-east-1")
        parameters.clear_caches()


def test_a_securestring_parameter_is_the_secret(aws: boto3.Session) -> None:
    aws.client("ssm").put_parameter(
        Name="/chat/llm-api-key", Value="sk-from-ssm", Type="SecureString"
    )
    assert read_secret("ssm:/chat/llm-api-key", max_age=300) == "sk-from-ssm"
    settings = Settings(llm_api_key_parameter="ssm:/chat/llm-api-key")
    assert settings.secret("llm_api_key") == "sk-from-ssm"


def test_a_secrets_manager_secret_is_the_secret_text_or_binary(aws: boto3.Session) -> None:
    secrets = aws.client("secretsmanager")
    secrets.create_secret(Name="chat/webhook", SecretString="whsec_abc=")
    secrets.create_secret(Name="chat/binary", SecretBinary=b"whsec_bin=")
    assert read_secret("secretsmanager:chat/webhook", max_age=300) == "whsec_abc="
    assert read_secret("secretsmanager:chat/binary", max_age=300) == "whsec_bin="


def test_a_value_in_the_environment_wins(
    aws: boto3.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHAT_LLM_API_KEY", "sk-local")
    settings = Settings(llm_api_key_parameter="ssm:/chat/nowhere")
    assert settings.secret("llm_api_key") == "sk-local"


def test_a_secret_is_cached_for_its_max_age_then_read_again(aws: boto3.Session) -> None:
    ssm = aws.client("ssm")
    ssm.put_parameter(Name="/chat/key", Value="first", Type="SecureString")
    cached = Settings(llm_api_key_parameter="ssm:/chat/key", secrets_max_age_seconds=300)
    assert cached.secret("llm_api_key") == "first"
    ssm.put_parameter(Name="/chat/key", Value="rotated", Type="SecureString", Overwrite=True)
    assert cached.secret("llm_api_key") == "first"  # within its max age: no second read

    ssm.put_parameter(Name="/chat/other", Value="first", Type="SecureString")
    uncached = Settings(llm_api_key_parameter="ssm:/chat/other", secrets_max_age_seconds=0)
    assert uncached.secret("llm_api_key") == "first"
    ssm.put_parameter(Name="/chat/other", Value="rotated", Type="SecureString", Overwrite=True)
    assert uncached.secret("llm_api_key") == "rotated"  # its max age is over at once


def test_a_secret_that_cannot_be_read_counts_as_unset(
    aws: boto3.Session, caplog: pytest.LogCaptureFixture
) -> None:
    assert read_secret("ssm:/chat/missing", max_age=300) is None
    assert read_secret("secretsmanager:chat/missing", max_age=300) is None
    assert "ssm:/chat/missing" in caplog.text and "secretsmanager:chat/missing" in caplog.text


def test_a_reference_without_its_store_is_refused(aws: boto3.Session) -> None:
    with pytest.raises(ValueError, match="ssm:<name> or secretsmanager:<name>"):
        read_secret("/chat/llm-api-key", max_age=300)
