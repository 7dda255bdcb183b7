"""The model client and what to do when a call fails.

    request = {"model": ..., "messages": [...], **provider_metadata(user_id, session_id)}
    stream = await open_stream(request)       # a turn's call; events are the chunks' JSON
    reply = await complete(request)           # a title or a summary: the reply's JSON
    if is_retryable(exc): await asyncio.sleep(retry_delay(attempt))
    user_message_for(exc)                     # what the user reads when we give up

Any OpenAI-compatible endpoint (`CHAT_LLM_BASE_URL`, default OpenRouter). The SDK's own
retries are off: the turn retries itself, because whether a retry is invisible depends on
whether text of the failed attempt already reached the stream.
"""

from __future__ import annotations

import asyncio
import json
import re
import weakref
from typing import TYPE_CHECKING, Any, cast

from ..settings import get_settings

if TYPE_CHECKING:
    import openai

# `openai` (and its transport, httpx2) is imported on the first model call, not at import:
# it is the heaviest import of the layer (~0.3 s), and a cold start that never calls a model
# must not pay for it.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, openai.AsyncOpenAI] = (
    weakref.WeakKeyDictionary()
)


_MAX_CONNECTIONS = 1000  # the SDK's own default: only the idle ones are bounded tighter


def get_llm_client() -> openai.AsyncOpenAI:
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        import httpx2
        import openai

        settings = get_settings()
        client = _clients[loop] = openai.AsyncOpenAI(
            base_url=settings.llm_base_url,
            # The SDK refuses to start without a key; an unset key then fails as a
            # readable 401 from the endpoint instead of at import.
            api_key=settings.secret("llm_api_key") or "not-configured",
            max_retries=0,
            timeout=settings.llm_timeout_seconds,
            http_client=openai.DefaultAsyncHttpxClient(
                limits=httpx2.Limits(
                    max_connections=_MAX_CONNECTIONS,
                    max_keepalive_connections=settings.llm_keepalive_connections,
                )
            ),
        )
    return client


def reset_llm_clients() -> None:
    _clients.clear()


async def open_stream(request: dict[str, Any]) -> openai.AsyncStream[dict[str, Any]]:
    """`chat.completions.create(**request)` for a streamed call, through the SDK's raw
    `post`: the same request, retries, errors and stream, as plain JSON both ways. `create`
    walks its typed params key by key to rewrite them (2.3 ms of CPU for a dozen messages,
    more as the history grows, before the model even hears of the call), and builds a typed
    chunk from every event (about a third of a turn's CPU); a turn reads three fields of it.
    Events are the chunks' JSON objects (`choices[0].delta.content`, `usage`, …)."""
    import openai

    stream = await get_llm_client().post(
        "/chat/completions",
        body=_body(request),
        cast_to=object,
        stream=True,
        # `object`: the SDK hands each event over as json.loads made it, a dict.
        stream_cls=openai.AsyncStream[object],
    )
    return cast("openai.AsyncStream[dict[str, Any]]", stream)


async def complete(request: dict[str, Any]) -> dict[str, Any]:
    """`chat.completions.create(**request)` unstreamed, as JSON both ways (see `open_stream`):
    `reply["choices"][0]["message"]["content"]`."""
    reply = await get_llm_client().post("/chat/completions", body=_body(request), cast_to=object)
    return cast(dict[str, Any], reply)


def _body(request: dict[str, Any]) -> dict[str, Any]:
    """The request as `create` would send it: what the SDK takes as `extra_body`, inline."""
    body = dict(request)
    body.update(body.pop("extra_body", None) or {})
    return body


# OpenRouter's limit on both fields.
_METADATA_CHARS = 128

# A provider failing after HTTP 200 was sent reports it in the stream; the SDK raises a plain
# APIError with the provider's words, and these words say another try may well succeed.
_TRANSIENT_IN_STREAM = re.compile(r"overloaded|internal (?:server )?error", re.IGNORECASE)
# How providers word "not served where this server is" (OpenAI, Anthropic, Google, OpenRouter).
_REGION_BLOCK = re.compile(
    r"unsupported_country_region_territory|country, region,? or territory"
    r"|not available in (?:your|this) (?:region|country|location)"
    r"|location is not supported|region is not supported",
    re.IGNORECASE,
)
MODEL_NOT_AVAILABLE_REGION = "MODEL_NOT_AVAILABLE_REGION"


def provider_metadata(user_id: str | None, session_id: str | None) -> dict[str, Any]:
    """What every model call tells the provider about whose call it is, for its tracing and
    abuse reports: `user` (OpenAI's field) and `session_id` (OpenRouter's)."""
    metadata: dict[str, Any] = {}
    if user_id:
        metadata["user"] = user_id[:_METADATA_CHARS]
    if session_id:
        metadata["extra_body"] = {"session_id": session_id[:_METADATA_CHARS]}
    return metadata


def is_retryable(exc: BaseException) -> bool:
    """429, 5xx, connection failures and an in-stream overload or internal error are worth
    another try; nothing else is. A transport error the SDK did not wrap counts as a
    connection failure."""
    import httpx2
    import openai

    if isinstance(exc, (openai.RateLimitError, openai.APIConnectionError, httpx2.TransportError)):
        return True
    if is_region_block(exc):
        return False
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code >= 500
    if isinstance(exc, openai.APIError):
        return bool(_TRANSIENT_IN_STREAM.search(_error_text(exc)))
    return False


def is_region_block(exc: BaseException) -> bool:
    import openai

    return isinstance(exc, openai.APIError) and bool(_REGION_BLOCK.search(_error_text(exc)))


def _error_text(exc: openai.APIError) -> str:
    return f"{exc.message} {json.dumps(exc.body, default=str) if exc.body else ''}"


def retry_delay(attempt: int, exc: BaseException | None = None) -> float:
    """Exponential backoff (1, 2, 4 … s, capped), or the server's Retry-After when shorter
    than the cap."""
    settings = get_settings()
    delay = min(settings.llm_retry_base_seconds * 2**attempt, settings.llm_retry_max_seconds)
    retry_after = _retry_after(exc)
    if retry_after is not None:
        delay = min(max(retry_after, 0.0), settings.llm_retry_max_seconds)
    return delay


def _retry_after(exc: BaseException | None) -> float | None:
    response: Any = getattr(exc, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def user_message_for(exc: BaseException) -> str:
    import httpx2
    import openai

    if is_region_block(exc):
        return (
            "The AI model is not available in the region this server runs in "
            f"({MODEL_NOT_AVAILABLE_REGION}); an administrator needs to choose another model "
            "or provider."
        )
    if isinstance(exc, openai.RateLimitError):
        return (
            "The AI model is receiving too many requests right now. Please try again in a minute."
        )
    if isinstance(exc, (openai.APIConnectionError, httpx2.TransportError)):
        return "The AI model could not be reached. Please try again shortly."
    if isinstance(exc, openai.AuthenticationError):
        return "The AI model rejected this server's credentials; an administrator needs to check the API key."
    if isinstance(exc, openai.NotFoundError):
        return "The configured AI model is not available; an administrator needs to check the model name."
    if isinstance(exc, openai.APIStatusError) and exc.status_code >= 500:
        return "The AI model is unavailable right now. Please try again shortly."
    if isinstance(exc, openai.BadRequestError):
        return f"The AI model could not process this conversation: {_api_message(exc)}"
    if isinstance(exc, openai.APIError) and is_retryable(exc):
        return "The AI model is overloaded right now. Please try again shortly."
    return "Something went wrong while generating the answer. Please try again."


def _api_message(exc: openai.APIStatusError) -> str:
    body: Any = exc.body
    if isinstance(body, dict):
        message = body.get("message") or (body.get("error") or {}).get("message")
        if message:
            return str(message)[:300]
    return exc.message[:300]
