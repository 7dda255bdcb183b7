"""A scripted OpenAI-compatible chat model over real HTTP, for tests and the keyless dev server.

    from openai import OpenAI
    from chat_dev.scripted_model import ScriptedModelServer, ToolCall

    with ScriptedModelServer() as model:
        model.reply_tool_calls(ToolCall("find_agent", {"query": "tax returns"}))
        client = OpenAI(base_url=model.base_url, api_key="anything")
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        model.chat_requests[-1].messages     # what the model was sent
        model.chat_requests[-1].system_prompt        # and the system prompt it was given

    python -m chat_dev.scripted_model --port 8001 --delay-ms 15

The `openai` SDK talks to it as to any provider, so its own SSE and tool-call parsing run.
Queued behaviours answer the next requests in order; with the queue empty the brain
(`scripted_brain.answer`) decides. Another process drives it over HTTP:

    POST /_scripted/queue      a behaviour or a list: {"kind": "reply", "text": "Hi"}
    GET  /_scripted/queue      {"pending": [...]}: what is still queued
    GET  /_scripted/requests   {"requests": [{"method", "path", "body"}]}: all received
    POST /_scripted/reset      empty the queue and the record (204)

Behaviour kinds: `reply` (text and/or tool_calls, optional delay_ms), `drop`, `stream_error`
(`overloaded_mid_stream()` is the provider overload that arrives after the answer began),
`http_error`; see the classes below. A non-streaming request asking for a summary is answered
with one (see `scripted_brain`). Any behaviour may carry `"stream": true|false` to be
taken only by a streaming or a non-streaming request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Self

import uvicorn
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from chat_dev.scripted_brain import Reply, ToolCall, answer, text_of
from chat_dev.scripted_wire import DONE, Completion, error_body, estimate_prompt_tokens, sse

__all__ = [
    "Behaviour",
    "Drop",
    "HttpError",
    "RecordedRequest",
    "ReplyWith",
    "ScriptedModel",
    "ScriptedModelServer",
    "StreamError",
    "ToolCall",
]

MODEL_ID = "scripted-model"
Brain = Callable[[dict[str, Any]], Reply]

# --- behaviours -------------------------------------------------------------------------


class _Behaviour(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stream: bool | None = None
    """Only a request with this `stream` flag takes it (None: any request), so a scripted
    turn is not used up by a title request that happens to arrive first."""


class _Says(_Behaviour):
    text: str | None = None
    tool_calls: list[ToolCall] | None = None
    """Neither text nor tool_calls: the brain decides what is said."""
    delay_ms: int | None = Field(None, ge=0)
    """Pause between streamed chunks; None: the server's default."""
    reasoning: str | None = None
    reasoning_field: Literal["reasoning", "reasoning_content"] = "reasoning"

    def reply(self) -> Reply | None:
        if self.text is None and self.tool_calls is None:
            return None
        return Reply(
            text=self.text or "",
            tool_calls=tuple(self.tool_calls or ()),
            reasoning=self.reasoning or "",
            reasoning_field=self.reasoning_field,
        )


class ReplyWith(_Says):
    """Answer normally. A slow stream is this with a `delay_ms`."""

    kind: Literal["reply"] = "reply"


class Drop(_Says):
    """Stream `after_chunks` chunks, then drop the connection: no finish_reason, no [DONE].
    A non-streaming request gets half a JSON body."""

    kind: Literal["drop"] = "drop"
    after_chunks: int = Field(3, ge=0)


class StreamError(_Says):
    """Stream `after_chunks` chunks, then an error chunk (as OpenRouter does when the provider
    fails mid-answer) and end without [DONE]. A non-streaming request gets HTTP 502."""

    kind: Literal["stream_error"] = "stream_error"
    after_chunks: int = Field(2, ge=0)
    message: str = "Provider returned error"
    code: int | str = 502


class HttpError(_Behaviour):
    """Answer with this status and an OpenAI-style error body."""

    kind: Literal["http_error"] = "http_error"
    status: int = Field(ge=400, le=599)
    message: str | None = None
    retry_after: float | None = Field(None, ge=0)
    """Seconds; sent as `retry-after` (whole seconds) and `retry-after-ms`."""


Behaviour = Annotated[ReplyWith | Drop | StreamError | HttpError, Field(discriminator="kind")]
_BEHAVIOURS: TypeAdapter[Behaviour | list[Behaviour]] = TypeAdapter(Behaviour | list[Behaviour])


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    body: Any
    """The parsed JSON body; None when there was none or it was not JSON."""

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.body.get("messages", []) if isinstance(self.body, dict) else []

    @property
    def system_prompt(self) -> str | None:
        """The first system message's text: the prompt the model was given."""
        for message in self.messages:
            if message.get("role") == "system":
                return text_of(message.get("content"))
        return None

    @property
    def streaming(self) -> bool:
        return isinstance(self.body, dict) and bool(self.body.get("stream"))

    @property
    def tool_names(self) -> list[str]:
        tools = self.body.get("tools") if isinstance(self.body, dict) else None
        return [tool["function"]["name"] for tool in tools or []]


class _DroppedConnection(Exception):
    """Raised inside a response that has started, so uvicorn closes the socket mid-body."""


class _HideScriptedDrops(logging.Filter):
    """A drop a test asked for is not a server error worth a traceback in the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, BaseExceptionGroup):
            return error.subgroup(_DroppedConnection) is None
        return not isinstance(error, _DroppedConnection)


# --- the application --------------------------------------------------------------------


class ScriptedModel:
    """The ASGI app (`.app`), its queue of behaviours and its record of requests. The control
    methods are thread-safe: tests call them while uvicorn serves on another thread."""

    def __init__(self, delay_ms: int = 0, brain: Brain = answer) -> None:
        self.delay_ms = delay_ms
        self.brain = brain
        self._lock = threading.Lock()
        self._queue: list[Behaviour] = []
        self._requests: list[RecordedRequest] = []
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat_completions, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/_scripted/queue", self._http_enqueue, methods=["POST"]),
                Route("/_scripted/queue", self._http_pending, methods=["GET"]),
                Route("/_scripted/requests", self._http_requests, methods=["GET"]),
                Route("/_scripted/reset", self._http_reset, methods=["POST"]),
            ]
        )
        uvicorn_errors = logging.getLogger("uvicorn.error")
        if not any(isinstance(f, _HideScriptedDrops) for f in uvicorn_errors.filters):
            uvicorn_errors.addFilter(_HideScriptedDrops())

    # --- control ---------------------------------------------------------------------------

    def enqueue(self, *behaviours: Behaviour) -> None:
        with self._lock:
            self._queue.extend(behaviours)

    def reply_text(
        self, text: str, *, delay_ms: int | None = None, stream: bool | None = None
    ) -> None:
        self.enqueue(ReplyWith(text=text, delay_ms=delay_ms, stream=stream))

    def reply_tool_calls(
        self,
        *calls: ToolCall,
        text: str = "",
        delay_ms: int | None = None,
        stream: bool | None = None,
    ) -> None:
        self.enqueue(ReplyWith(text=text, tool_calls=list(calls), delay_ms=delay_ms, stream=stream))

    def reply_error(
        self,
        status: int,
        *,
        message: str | None = None,
        retry_after: float | None = None,
        stream: bool | None = None,
    ) -> None:
        self.enqueue(
            HttpError(status=status, message=message, retry_after=retry_after, stream=stream)
        )

    def slow_stream(self, delay_ms: int, *, text: str | None = None) -> None:
        """The next streamed answer (the brain's unless `text` is given), `delay_ms` per chunk."""
        self.enqueue(ReplyWith(text=text, delay_ms=delay_ms, stream=True))

    def drop_stream(self, *, after_chunks: int = 3, text: str | None = None) -> None:
        self.enqueue(Drop(after_chunks=after_chunks, text=text, stream=True))

    def stream_error(
        self, message: str = "Provider returned error", *, after_chunks: int = 2
    ) -> None:
        self.enqueue(StreamError(message=message, after_chunks=after_chunks, stream=True))

    def overloaded_mid_stream(self, *, after_chunks: int = 2, text: str | None = None) -> None:
        """The next streamed answer begins, then the provider reports it is overloaded, as
        OpenRouter relays an upstream overload once HTTP 200 has been sent."""
        self.enqueue(
            StreamError(
                message="Overloaded",
                code="overloaded_error",
                after_chunks=after_chunks,
                text=text,
                stream=True,
            )
        )

    def pending(self) -> list[Behaviour]:
        with self._lock:
            return list(self._queue)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    @property
    def streamed_requests(self) -> list[RecordedRequest]:
        """The streamed chat calls (a turn's rounds), without the one-shot ones beside them
        (titles, summaries), which may arrive in any order with them."""
        return [r for r in self.chat_requests if r.streaming]

    def clear(self) -> None:
        """Forget queued behaviours and recorded requests."""
        with self._lock:
            self._queue.clear()
            self._requests.clear()

    def _take(self, streaming: bool) -> Behaviour | None:
        with self._lock:
            for index, behaviour in enumerate(self._queue):
                if behaviour.stream in (None, streaming):
                    return self._queue.pop(index)
        return None

    def _record(self, request: Request, body: Any) -> None:
        with self._lock:
            self._requests.append(RecordedRequest(request.method, request.url.path, body))

    # --- the OpenAI API --------------------------------------------------------------------

    async def _models(self, request: Request) -> Response:
        self._record(request, None)
        model = {"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "scripted"}
        return JSONResponse({"object": "list", "data": [model]})

    async def _chat_completions(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:  # not JSON, or not UTF-8
            body = None
        self._record(request, body)
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _error(400, "'messages' must be a list of messages.")
        if not body["messages"]:
            return _error(400, "'messages' must not be empty.")

        streaming = bool(body.get("stream"))
        behaviour = self._take(streaming) or ReplyWith()
        if isinstance(behaviour, HttpError):
            return _error(behaviour.status, behaviour.message, retry_after=behaviour.retry_after)
        if isinstance(behaviour, StreamError) and not streaming:
            return _error(502, behaviour.message)

        stream_options = body.get("stream_options") or {}
        completion = Completion(
            behaviour.reply() or self.brain(body),
            model=str(body.get("model") or MODEL_ID),
            prompt_tokens=estimate_prompt_tokens(body),
            include_usage=streaming and bool(stream_options.get("include_usage")),
        )
        if not streaming:
            if isinstance(behaviour, Drop):
                half_body = json.dumps(completion.body())[:40]
                return StreamingResponse(_then_drop([half_body]), media_type="application/json")
            return JSONResponse(completion.body())

        events = [sse(chunk) for chunk in completion.chunks()]
        if isinstance(behaviour, Drop):
            body_parts = _then_drop(events[: behaviour.after_chunks])
        elif isinstance(behaviour, StreamError):
            error = completion.error_chunk(behaviour.message, behaviour.code)
            body_parts = self._paced([*events[: behaviour.after_chunks], sse(error)], behaviour)
        else:
            if completion.include_usage:
                events.append(sse(completion.usage_chunk()))
            body_parts = self._paced([*events, sse(DONE)], behaviour)
        return StreamingResponse(
            body_parts, media_type="text/event-stream", headers={"cache-control": "no-cache"}
        )

    async def _paced(self, events: list[str], behaviour: _Says) -> AsyncIterator[str]:
        delay_ms = self.delay_ms if behaviour.delay_ms is None else behaviour.delay_ms
        for number, event in enumerate(events):
            if number and delay_ms:
                await asyncio.sleep(delay_ms / 1000)
            yield event

    # --- control over HTTP -----------------------------------------------------------------

    async def _http_enqueue(self, request: Request) -> Response:
        try:
            parsed = _BEHAVIOURS.validate_json(await request.body())
        except ValidationError as exc:
            detail = json.loads(exc.json(include_url=False))
            return JSONResponse({"detail": detail}, status_code=422)
        behaviours = parsed if isinstance(parsed, list) else [parsed]
        self.enqueue(*behaviours)
        return JSONResponse({"queued": len(behaviours), "pending": len(self.pending())})

    async def _http_pending(self, request: Request) -> Response:
        return JSONResponse({"pending": [b.model_dump(mode="json") for b in self.pending()]})

    async def _http_requests(self, request: Request) -> Response:
        recorded = [{"method": r.method, "path": r.path, "body": r.body} for r in self.requests]
        return JSONResponse({"requests": recorded})

    async def _http_reset(self, request: Request) -> Response:
        self.clear()
        return Response(status_code=204)


def _error(
    status: int, message: str | None = None, *, retry_after: float | None = None
) -> Response:
    headers = {}
    if retry_after is not None:
        headers["retry-after"] = str(math.ceil(retry_after))
        headers["retry-after-ms"] = str(round(retry_after * 1000))
    return JSONResponse(error_body(status, message), status_code=status, headers=headers)


async def _then_drop(parts: list[str]) -> AsyncIterator[str]:
    for part in parts:
        yield part
    raise _DroppedConnection("scripted drop")


# --- running it -------------------------------------------------------------------------


class ScriptedModelServer(ScriptedModel):
    """`ScriptedModel` served by uvicorn on a background thread, on 127.0.0.1 and a free port
    unless `port` is given."""

    def __init__(
        self,
        port: int | None = None,
        delay_ms: int = 0,
        *,
        host: str = "127.0.0.1",
        brain: Brain = answer,
    ) -> None:
        super().__init__(delay_ms=delay_ms, brain=brain)
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The root, where `/_scripted/...` lives."""
        if self._server is None:
            raise RuntimeError("the scripted model server is not running; call start() first")
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What `AsyncOpenAI(base_url=...)` and `CHAT_LLM_BASE_URL` take."""
        return f"{self.url}/v1"

    def start(self, timeout: float = 10.0) -> Self:
        if self._server is not None:
            return self
        # Bound here rather than by uvicorn, so the port is known before the thread starts.
        # IPPROTO_TCP, not 0: asyncio turns Nagle off only on sockets it knows are TCP, and
        # with Nagle on the first bytes of a stream can wait ~40 ms for a delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port or 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_config=None,  # leave the host process's logging alone
            access_log=False,
            lifespan="off",
            ws="none",
            timeout_graceful_shutdown=2,  # a slow stream in flight must not hold stop() up
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run,
            kwargs={"sockets": [sock]},
            name=f"scripted-model-{self.port}",
            daemon=True,
        )
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                thread.join(timeout=5)
                sock.close()
                raise RuntimeError(f"the scripted model server did not start on port {self.port}")
            time.sleep(0.01)
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m chat_dev.scripted_model",
        description="A scripted OpenAI-compatible chat model (see the module docstring).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--delay-ms", type=int, default=15, help="pause between streamed chunks")
    args = parser.parse_args(argv)
    model = ScriptedModel(delay_ms=args.delay_ms)
    print(f"CHAT_LLM_BASE_URL=http://{args.host}:{args.port}/v1", flush=True)
    uvicorn.run(model.app, host=args.host, port=args.port, lifespan="off", ws="none")


if __name__ == "__main__":
    main()
