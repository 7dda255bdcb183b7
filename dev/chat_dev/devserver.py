"""The local server: every route, the chat page, the worker and the sweeper in one process.

    make dev                                       # = python -m chat_dev.devserver
    make dev RELOAD=1                              # restart on *.py changes (--reload)
    PORT=8080 make dev                             # another port
    CHAT_LLM_API_KEY=sk-… make dev                 # a real model (OpenRouter unless
                                                   #   CHAT_LLM_BASE_URL says otherwise)

Settings come from the environment and from `.env` in the project folder (the environment
wins; `.env.example` lists them all).

What is not configured is provided, so a fresh clone runs with no keys at all:

- CHAT_REDIS_URL unset: an embedded redis-server with persistence in `<cwd>/.data/redis`,
  so chats survive a restart;
- no LLM key: the scripted OpenAI-compatible model (chat_dev.scripted_model);
- CHAT_JWT_SECRET unset: one is generated once and kept in `<cwd>/.data/secrets`, so the
  tokens `POST /dev/login {"user_id"}` mints stay valid across restarts;
- CHAT_WEBHOOK_SECRET unset: a `whsec_` one is generated and kept the same way;
- CHAT_AGENT_GENERATOR_URL unset: a fake agent generator served here
  (chat_dev.fake_agent_generator), so `create_agent` completes by webhook.

Knobs of the dev server alone: CHAT_DEV_MODEL_DELAY_MS (the scripted model's pause between
chunks) and CHAT_DEV_AGENT_DELAY_SECONDS (how long the fake generator takes).

With `--reload` a watcher (watchfiles) runs the server as a child process and restarts it
when a `*.py` file under the working directory changes, as uvicorn's reload does; chats,
secrets and so tokens survive the restart.

`GET /dev/info` says what runs (which model answers, whether it is the scripted one and
where its control API is, whether dev login is available); the page shows it as a banner.
Ctrl-C (or SIGTERM) stops everything this started, the embedded Redis included.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import fcntl
import logging
import os
import re
import secrets
import shlex
import signal
import socket
import sys
import time
import warnings
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

# Read by Powertools when chat_core.observability is imported, so set before any of it is.
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_DEV", "true")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "chat-dev")
warnings.filterwarnings("ignore", message="POWERTOOLS_DEV environment variable is enabled")

import jwt
import uvicorn
from chat_core import gc_tuning
from chat_core.settings import get_settings
from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.types import Scope

from chat_dev.embedded_redis import EmbeddedRedis
from chat_dev.scripted_model import ScriptedModelServer

logger = logging.getLogger("chat_core.devserver")

SWEEP_EVERY_SECONDS = 60.0
TOKEN_LIFETIME_SECONDS = 7 * 24 * 3600
USER_ID = r"^[A-Za-z0-9_.@-]{1,64}$"


@dataclass
class DevEnvironment:
    """What `prepare()` found or started, for the banner, `/dev/info` and shutdown."""

    host: str
    port: int
    project_dir: Path
    redis_url: str = ""
    redis: EmbeddedRedis | None = None
    redis_data_dir: Path | None = None
    scripted: ScriptedModelServer | None = None
    model: str = ""
    llm_base_url: str = ""
    agent_generator_local: bool = False
    generated: list[str] = field(default_factory=list)
    secrets_dir: Path | None = None
    _lock: IO[str] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def info(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "scripted": self.scripted is not None,
            "scripted_url": self.scripted.url if self.scripted else None,
            "llm_base_url": self.llm_base_url,
            "dev_login": True,
            "redis_url": _without_password(self.redis_url),
            "redis_embedded": self.redis is not None,
            "redis_data_dir": str(self.redis_data_dir) if self.redis_data_dir else None,
            "agent_generator_url": get_settings().agent_generator_url,
            "agent_generator_local": self.agent_generator_local,
            "public_base_url": get_settings().public_base_url,
            "generated_secrets": self.generated,
            "pid": os.getpid(),
        }

    def stop(self) -> None:
        """Stop what `prepare()` started; safe to call twice."""
        if self.scripted is not None:
            self.scripted.stop()
        if self.redis is not None:
            self.redis.stop()
        if self._lock is not None:
            self._lock.close()
            self._lock = None


def prepare(host: str, port: int, project_dir: Path) -> DevEnvironment:
    """Fill in the environment: start Redis and the scripted model if needed, make secrets."""
    env = DevEnvironment(host=host, port=port, project_dir=project_dir)
    try:
        _prepare(env)
    except BaseException:
        env.stop()
        raise
    get_settings.cache_clear()
    return env


def _prepare(env: DevEnvironment) -> None:
    settings = get_settings()
    if settings.redis_url:
        env.redis_url = settings.redis_url
    else:
        data_dir = (env.project_dir / settings.data_dir / "redis").resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        env._lock = _lock_data_dir(data_dir)
        env.redis = EmbeddedRedis(data_dir=data_dir, persist=True).start()
        env.redis_data_dir = data_dir
        env.redis_url = env.redis.url
        os.environ["CHAT_REDIS_URL"] = env.redis_url
        os.environ["CHAT_REDIS_MODE"] = "standalone"

    if settings.llm_api_key is None:
        env.scripted = ScriptedModelServer(delay_ms=settings.dev_model_delay_ms).start()
        os.environ["CHAT_LLM_BASE_URL"] = env.scripted.base_url
        env.model = "the scripted model (no CHAT_LLM_API_KEY is set)"
        env.llm_base_url = env.scripted.base_url
    else:
        env.model = settings.model
        env.llm_base_url = settings.llm_base_url

    generated: dict[str, Callable[[], str]] = {
        "CHAT_JWT_SECRET": lambda: secrets.token_urlsafe(32),
        "CHAT_WEBHOOK_SECRET": lambda: (
            "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        ),
    }
    for name, make in generated.items():
        if getattr(settings, name.removeprefix("CHAT_").lower()) is None:
            env.secrets_dir = (env.project_dir / settings.data_dir / "secrets").resolve()
            os.environ[name] = kept_secret(env.secrets_dir / name, make)
            env.generated.append(name)
    if "CHAT_PUBLIC_BASE_URL" not in os.environ:
        os.environ["CHAT_PUBLIC_BASE_URL"] = env.url
    if not settings.agent_generator_url:
        os.environ["CHAT_AGENT_GENERATOR_URL"] = f"{env.url}/dev/agent-generator"
        env.agent_generator_local = True


def kept_secret(path: Path, make: Callable[[], str]) -> str:
    """The secret in `path`, made and written (owner-only) the first time. Two servers
    starting at once agree: the first link wins and the other reads it."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        draft.write_text(make())
        draft.chmod(0o600)
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


def _lock_data_dir(data_dir: Path) -> IO[str]:
    """Two servers appending to one AOF would corrupt it: the second one is refused."""
    lock = open(data_dir / "devserver.lock", "w")  # noqa: SIM115 - held for the process's life
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise SystemExit(
            f"Another dev server is using {data_dir}. Stop it first, or set CHAT_REDIS_URL."
        ) from None
    lock.write(str(os.getpid()))
    lock.flush()
    return lock


# --- the app -----------------------------------------------------------------------------


class LoginRequest(BaseModel):
    user_id: str = Field(pattern=USER_ID, description="Any id: this is a dev server")


class LoginAnswer(BaseModel):
    token: str = Field(description="An HS256 JWT for `Authorization: Bearer …`")
    user_id: str
    expires_at: int = Field(description="Unix seconds")


class DevInfo(BaseModel):
    model: str
    scripted: bool
    scripted_url: str | None
    llm_base_url: str
    dev_login: bool
    redis_url: str
    redis_embedded: bool
    redis_data_dir: str | None
    agent_generator_url: str | None
    agent_generator_local: bool
    public_base_url: str
    generated_secrets: list[str]
    pid: int


def mint_token(user_id: str, lifetime_seconds: int = TOKEN_LIFETIME_SECONDS) -> tuple[str, int]:
    settings = get_settings()
    now = int(time.time())
    claims: dict[str, Any] = {"sub": user_id, "iat": now, "exp": now + lifetime_seconds}
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    secret = settings.secret("jwt_secret")
    assert secret, "prepare() sets CHAT_JWT_SECRET"
    return jwt.encode(claims, secret, algorithm="HS256"), claims["exp"]


def dev_router(env: DevEnvironment) -> APIRouter:
    router = APIRouter(prefix="/dev", tags=["dev"])

    @router.get("/info", response_model=DevInfo)
    async def info() -> dict[str, Any]:
        return env.info()

    @router.post("/login", response_model=LoginAnswer)
    async def login(body: LoginRequest) -> dict[str, Any]:
        token, expires_at = mint_token(body.user_id)
        return {"token": token, "user_id": body.user_id, "expires_at": expires_at}

    return router


class _PageFiles(StaticFiles):
    """The page's files, never cached: an edited app.js shows on the next reload."""

    async def get_response(self, path: str, scope: Scope) -> Any:
        response = await super().get_response(path, scope)
        response.headers["Cache-Control"] = "no-cache"
        return response


def web_dir(project_dir: Path) -> Path:
    """`<project>/web`, or the one beside this package when run from elsewhere."""
    for candidate in (project_dir / "web", Path(__file__).resolve().parents[2] / "web"):
        if (candidate / "index.html").is_file():
            return candidate
    raise SystemExit(f"The chat page (web/index.html) was not found under {project_dir}.")


def build_app(env: DevEnvironment) -> FastAPI:
    # Imported here: the settings must be final before the core reads them.
    from chat_core import background
    from chat_core.api.app import ALL_ROUTERS, create_app
    from chat_core.api.openapi import documented
    from chat_core.completions.consumer import ConsumerService
    from chat_core.redis_client import close_redis
    from chat_core.worker.dispatch import InProcessDispatcher, set_dispatcher
    from chat_core.worker.runner import run_job

    from chat_dev.fake_agent_generator import FakeAgentGenerator

    set_dispatcher(InProcessDispatcher(run_job))  # the worker runs in this process

    settings = get_settings()
    generator = FakeAgentGenerator(
        webhook_secret=settings.secret("webhook_secret") or "",
        delay_seconds=settings.dev_agent_delay_seconds,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        consumer = ConsumerService(consumer=f"dev-{os.getpid()}")
        consumer.start()
        sweeper = asyncio.create_task(_sweep_periodically(SWEEP_EVERY_SECONDS), name="sweeper")
        keeper = (
            asyncio.create_task(_keep_redis_running(env.redis), name="redis-keeper")
            if env.redis is not None
            else None
        )
        print(banner(env), flush=True)
        try:
            yield
        finally:
            for periodic in (sweeper, keeper):
                if periodic is not None:
                    periodic.cancel()
            await asyncio.gather(*(t for t in (sweeper, keeper) if t), return_exceptions=True)
            await consumer.stop()
            await generator.aclose()
            # A turn still running is cancelled (and marked so) rather than waited for.
            await background.drain(timeout=3.0)
            await close_redis()

    app = create_app(*ALL_ROUTERS, title="Chat streaming backend (dev server)")
    app.router.lifespan_context = lifespan
    app.include_router(documented(dev_router(env)))
    if env.agent_generator_local:
        app.include_router(documented(generator.router))
    app.mount("/", _PageFiles(directory=web_dir(env.project_dir), html=True), name="page")
    return app


async def _keep_redis_running(redis: EmbeddedRedis, every: float = 0.5) -> None:
    """Start the embedded Redis again when it dies (OOM killer, a stray kill, a crash).

    Same port and data folder, so the clients reconnect by themselves and the chats are
    still there: a turn in flight rides it out with its write retries, as it would a
    failover of a managed cache, instead of the whole dev server needing a restart."""
    while True:
        await asyncio.sleep(every)
        process = redis.process
        if process is None or process.poll() is None:
            continue  # running, or stopped on purpose at shutdown
        logger.warning(
            "the embedded Redis exited (code %s); starting it again on port %s",
            process.returncode,
            redis.port,
        )
        while True:
            try:
                await asyncio.to_thread(redis.start)
                break
            except RuntimeError as exc:
                logger.error("the embedded Redis did not start again, retrying: %s", exc)
                await asyncio.sleep(1)
        logger.warning("the embedded Redis is back (pid %s)", redis.pid)


async def _sweep_periodically(every: float) -> None:
    from chat_core.completions.sweeper import sweep

    # The first run right away: a restart after a crash finds the turns it left behind.
    while True:
        try:
            await sweep()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - Redis away for a moment: the next run tries again
            logger.warning("sweep failed: %s: %s", type(exc).__name__, exc)
        await asyncio.sleep(every)


def banner(env: DevEnvironment) -> str:
    settings = get_settings()
    if env.redis is not None:
        redis = f"{env.redis_url}  (embedded, data in {env.redis_data_dir})"
    else:
        redis = f"{_without_password(env.redis_url)}  (CHAT_REDIS_URL)"
    if env.scripted is not None:
        model = f"{env.model}\n              control API {env.scripted.url}/_scripted/queue"
    else:
        model = f"{env.model} at {env.llm_base_url}"
    generator = settings.agent_generator_url or "none"
    if env.agent_generator_local:
        generator += "  (fake, answers by signed webhook)"
    lines = [
        "",
        "  Chat dev server",
        f"  Page        {env.url}/",
        f"  API docs    {env.url}/docs",
        f"  Redis       {redis}",
        f"  Model       {model}",
        f"  Agents      {generator}",
        f'  Sign in     the box on the page, or POST {env.url}/dev/login {{"user_id": "…"}}',
    ]
    if env.generated:
        lines.append(f"  Dev secrets {', '.join(env.generated)} (kept in {env.secrets_dir})")
    lines += ["  Ctrl-C stops everything.", ""]
    return "\n".join(lines)


def _without_password(url: str) -> str:
    return re.sub(r"//([^:/@]*):[^@]*@", r"//\1:***@", url)


# --- running it --------------------------------------------------------------------------


def bind(host: str, port: int) -> socket.socket:
    """Bound before anything starts, so a busy port is a clear error and not a stray Redis."""
    # IPPROTO_TCP, not 0: asyncio turns Nagle off only on sockets it knows are TCP, and with
    # Nagle on an SSE event can wait ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SystemExit(
            f"Cannot listen on {host}:{port} ({exc.strerror}). Try PORT=8001 make dev."
        ) from exc
    sock.set_inheritable(True)
    return sock


class _QuietScriptedModel(logging.Filter):
    """The scripted model is a second uvicorn in this process, sharing uvicorn's loggers: its
    start, stop and access lines would read as the dev server's own. Its warnings stay."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or not record.threadName.startswith(
            "scripted-model-"
        )


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    # uvicorn handles SIGTERM like Ctrl-C, then raises it again once it has shut down;
    # the default action would kill us before Redis and the model server are stopped.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m chat_dev.devserver", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=None, help="default: PORT, else 8000")
    parser.add_argument(
        "--reload", action="store_true", help="restart on *.py changes under the working folder"
    )
    args = parser.parse_args(argv)
    if args.reload:
        _run_reloading(argv if argv is not None else sys.argv[1:])
        return
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s"
    )
    for chatty in ("httpx", "httpx2"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    for shared in ("uvicorn.error", "uvicorn.access"):
        logging.getLogger(shared).addFilter(_QuietScriptedModel())
    signal.signal(signal.SIGTERM, _stop_on_sigterm)

    sock = bind(args.host, args.port if args.port is not None else get_settings().port)
    env: DevEnvironment | None = None
    try:
        env = prepare(args.host, sock.getsockname()[1], Path.cwd())
        app = build_app(env)
        gc_tuning.for_many_streams()  # one process serves every reader here
        config = uvicorn.Config(
            app,
            log_level="info",
            ws="none",
            # Open streams get this long to end after Ctrl-C; clients reconnect with their cursor.
            timeout_graceful_shutdown=3,
        )
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # Ctrl-C or SIGTERM: stopping is what was asked for
    finally:
        sock.close()
        if env is not None:
            stopped = [
                name
                for name, running in (
                    ("the embedded Redis", env.redis),
                    ("the scripted model", env.scripted),
                )
                if running
            ]
            env.stop()
            print(
                "Dev server stopped"
                + (f", and {' and '.join(stopped)} with it." if stopped else "."),
                file=sys.stderr,
                flush=True,
            )


def _run_reloading(argv: list[str]) -> None:
    """Run the server as a child and start it again when Python code changes: a whole new
    process, so the embedded Redis and the scripted model restart with the code."""
    from watchfiles import PythonFilter, run_process

    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    command = shlex.join(
        [sys.executable, "-m", "chat_dev.devserver", *(a for a in argv if a != "--reload")]
    )
    print(f"Reloading on changes to *.py under {Path.cwd()}", file=sys.stderr, flush=True)
    try:
        run_process(
            Path.cwd(),
            target=command,
            target_type="command",
            watch_filter=PythonFilter(),
            callback=lambda changes: print(
                f"Restarting: {len(changes)} file(s) changed", file=sys.stderr, flush=True
            ),
            # The child's own shutdown (open streams, Redis) must finish before a kill.
            sigint_timeout=20,
        )
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
