"""All configuration, read once from the environment (prefix ``CHAT_``).

    from chat_core.settings import get_settings
    settings = get_settings()
    settings.redis_url          # None in dev: the embedded server is started instead

Every knob the system has lives here, so a deployment is described by its environment and
nothing else. A ``.env`` file in the working directory (the project root under `make dev`)
is read too; the real environment wins over it. `.env.example` lists every setting with its
default. ``get_settings()`` caches; tests change the environment and call
``get_settings.cache_clear()``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_FILE = ".env"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CHAT_", extra="ignore", env_file=ENV_FILE, env_file_encoding="utf-8"
    )

    # --- Redis ---------------------------------------------------------------------------
    redis_url: str | None = None
    """`redis://` or `rediss://` (TLS). Unset in dev and tests: an embedded server is started."""
    redis_mode: Literal["standalone", "cluster"] = "standalone"
    """ElastiCache Serverless and MemoryDB are always `cluster`."""
    redis_connect_timeout: float = 5.0
    redis_socket_timeout: float = 10.0
    """Must outlast `read_block_ms`; the client factory raises it when it does not."""
    redis_protocol: Literal[2, 3] = 2
    redis_max_connections: int = 64
    """Pool of the write side (publish, lease, completion, sessions): readers never use it.
    A connection is held until the event loop has read its reply, so a busy process needs
    more of them than Redis's speed suggests."""
    redis_reader_max_connections: int = 16
    """Pool of the read side: replays, task lookups of readers, the fan-out's shared read.
    (On a cluster each live task's blocking read has its own connection besides.)"""
    redis_pool_timeout_seconds: float = 20.0
    """How long a command waits for a free pooled connection before it fails."""
    redis_health_check_interval: int = 30
    pubsub_mode: Literal["auto", "classic", "sharded"] = "auto"
    """`auto` uses sharded pub/sub on a cluster whose servers have it (Redis 7+)."""

    # --- Task streams --------------------------------------------------------------------
    stream_ttl_seconds: int = 3600
    """How long a finished task stays replayable; also the reconnect window."""
    stream_max_length: int = 10_000
    """About how many entries the dead-letter stream keeps. Task streams are never trimmed
    (a reader may replay a whole turn from any cursor); they expire with `stream_ttl_seconds`."""
    read_block_ms: int = 5_000
    replay_page_size: int = 500
    subscriber_queue_size: int = 1_000
    subscriber_put_timeout_seconds: float = 5.0
    heartbeat_seconds: float = 15.0
    max_readers_per_process: int = 2_000
    """Live stream readers one process serves; past it a reader gets 503 + Retry-After."""
    readers_retry_after_seconds: int = 2
    coalesce_ms: int = Field(0, ge=0, le=20)
    """Minimum spacing of text-delta writes. Deltas are always written behind the producer
    (merged while a write is in flight); a window > 0 merges more at some latency."""

    # --- Browsers ------------------------------------------------------------------------
    cors_origins: str = ""
    """Comma-separated origins allowed to call the API from a browser (a Next.js or Vite dev
    server, say); empty = same-origin only."""

    # --- Reading over HTTP ---------------------------------------------------------------
    read_mode: Literal["stream", "buffered"] = "stream"
    """`stream` behind uvicorn / Lambda Web Adapter; `buffered` behind Mangum (long-poll)."""
    stream_budget_seconds: float = 840.0
    long_poll_seconds: float = 25.0
    long_poll_linger_ms: int = 150

    # --- Task lifecycle ------------------------------------------------------------------
    worker_lease_seconds: int = 30
    """A worker's lease, refreshed while it works; also how long a new task waits for a
    worker. A task whose lease ran out is failed by the next sweep."""
    operation_timeout_seconds: int = 3600
    """How long a delegated operation may wait for its webhook."""
    cancel_poll_ms: int = 250
    cancel_grace_seconds: float = 2.0
    redis_retry_seconds: float = 20.0
    """How long a worker rides out a Redis outage (writes and lease refreshes retried with
    backoff) before it gives the turn up."""

    # --- Completions (webhook → worker) ---------------------------------------------------
    completions_max_deliveries: int = 5
    completions_claim_idle_ms: int = 60_000
    completions_batch_size: int = 10
    consumer_idle_delete_ms: int = 3_600_000
    webhook_dedupe_seconds: int = 86_400
    webhook_process_inline: bool = True
    """The webhook applies the completion and dispatches the continuation itself (it needs
    the session store then); off, it only queues it and wakes a worker to do that."""
    webhook_secret: SecretStr | None = None
    """Standard Webhooks secret, `whsec_<base64>`. Without it the webhook answers 503."""
    webhook_secret_parameter: str | None = None
    """Where the webhook secret is kept on AWS instead: `ssm:<parameter name>` (a SecureString)
    or `secretsmanager:<secret name or ARN>`; read through Powertools Parameters."""

    # --- Sessions ------------------------------------------------------------------------
    session_store: Literal["redis", "dynamodb"] = "redis"
    dynamodb_table: str = "chat-sessions"
    dynamodb_endpoint_url: str | None = None
    session_cache_ttl_seconds: int = 300
    session_ttl_seconds: int = 0
    """Redis store only: expire idle sessions after this many seconds (0 = keep)."""

    # --- LLM -----------------------------------------------------------------------------
    llm_base_url: str = "https://openrouter.ai/api/v1"
    llm_api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("CHAT_LLM_API_KEY", "OPEN_ROUTER_API_KEY", "OPENAI_API_KEY"),
    )
    llm_api_key_parameter: str | None = None
    """Where the model API key is kept on AWS instead (same forms as `webhook_secret_parameter`)."""
    secrets_max_age_seconds: int = Field(300, ge=0)
    """How long a secret read from SSM / Secrets Manager is cached (its rotation delay)."""
    model: str = "openai/gpt-4o-mini"
    title_model: str = "openai/gpt-4o-mini"
    llm_timeout_seconds: float = 120.0
    llm_keepalive_connections: int = Field(16, ge=0)
    """Idle connections to the model kept open for the next calls. Every call looks at each
    idle one (httpx probes its socket), so the hundred a burst of turns would otherwise
    leave behind cost every later call about a millisecond of CPU."""
    llm_max_retries: int = 3
    llm_retry_base_seconds: float = 1.0
    llm_retry_max_seconds: float = 30.0
    max_tool_rounds: int = 6
    context_window_tokens: int = 64_000
    max_output_tokens: int = 4_096
    context_keep_ratio: float = Field(0.5, gt=0, lt=1)
    """When turns must be summarised, the newest ones kept verbatim fill this share of the
    budget, so the turns after it fit without another summary."""
    context_prepare_ratio: float = Field(0.8, gt=0, le=1)
    """A conversation this full gets its summary made in the background, ahead of need."""
    context_summary_max_tokens: int = 400
    context_summary_timeout_seconds: float = 15.0
    """How long a turn that needs a summary now waits for it before dropping turns instead."""
    context_summary_ttl_seconds: int = 7 * 86_400
    langfuse_public_key: SecretStr | None = None
    langfuse_secret_key: SecretStr | None = None
    langfuse_host: str | None = None
    langfuse_prompt_name: str = "chat-system"
    langfuse_prompt_label: str | None = None
    """Which labelled version of the prompt to use; None is Langfuse's `production`. A
    staging deployment sets `latest` to try prompt edits before they are promoted."""
    langfuse_cache_ttl_seconds: int = Field(60, ge=0)
    """How long a fetched prompt is reused before Langfuse is asked again; 0 asks every turn."""

    # --- HTTP input limits ---------------------------------------------------------------
    max_message_chars: int = 10_000
    max_body_bytes: int = 262_144
    max_webhook_body_bytes: int = 1_048_576

    # --- Identity ------------------------------------------------------------------------
    jwt_secret: SecretStr | None = None
    """HS256 secret for the dev server. On AWS the API Gateway JWT authorizer validates."""
    jwt_jwks_url: str | None = None
    """Where the identity provider publishes its signing keys (RS256/ES256 tokens verified in
    the app): for functions without an API Gateway authorizer, like the streaming URL."""
    jwt_audience: str | None = None
    """Accepted audiences, comma-separated; empty skips the check (Cognito access tokens have
    no `aud`: require `client_id` with `jwt_required_claims` instead)."""
    jwt_issuer: str | None = None
    jwt_required_claims: str | None = None
    """Claims a token must carry, `name=value` pairs, comma-separated (e.g.
    `token_use=access,client_id=abc`)."""

    # --- Dispatch ------------------------------------------------------------------------
    dispatch: Literal["inprocess", "lambda"] = "inprocess"
    worker_function: str | None = None

    # --- Tools ---------------------------------------------------------------------------
    agent_generator_url: str | None = None
    library_agent_link: str = "/api/chat/users/me/agents/{agent_id}"
    """Where the page opens an agent saved to the user's library (`{agent_id}` filled in)."""
    redact_keys: str = (
        "api_key,access_key,private_key,secret,password,passwd,token,auth,authorization,"
        "credentials,cookie"
    )
    """Comma-separated keys whose values become `[REDACTED]` in every tool result before it
    reaches the stream, the session or the model. Matched case-insensitively, ignoring `-`
    and `_`, as whole keys or key suffixes (`openai_api_key`, `X-Auth-Token`)."""
    public_base_url: str = "http://127.0.0.1:8000"
    """Where external services reach our webhook (the callback URL is built from it)."""

    # --- Event bus -----------------------------------------------------------------------
    event_bus_max_message_bytes: int = 512 * 1024

    # --- Dev server ----------------------------------------------------------------------
    port: int = Field(8000, validation_alias=AliasChoices("PORT", "CHAT_PORT"))
    data_dir: str = ".data"
    """Embedded Redis's data and the dev secrets (kept across restarts), under the project."""
    dev_model_delay_ms: int = 25
    """The scripted model's pause between chunks (when no LLM key is set)."""
    dev_agent_delay_seconds: float = 4.0
    """How long the fake agent generator takes before it answers by webhook."""

    def secret(self, name: str) -> str | None:
        """The secret's value: from the environment (dev, tests), else from where
        `<name>_parameter` says it is kept (cached for `secrets_max_age_seconds`)."""
        value = getattr(self, name)
        if value is not None:
            return value.get_secret_value()
        where = getattr(self, f"{name}_parameter", None)
        if not where:
            return None
        from .secrets import read_secret

        return read_secret(where, max_age=self.secrets_max_age_seconds)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
