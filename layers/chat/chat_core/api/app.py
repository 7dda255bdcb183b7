"""FastAPI apps: each Lambda function mounts only its own routers; the dev server and the
OpenAPI docs mount them all.

    app = create_app(streams.router)          # the stream-start function
    app = create_app(*ALL_ROUTERS)            # everything, with /docs and /openapi.json
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from ..settings import get_settings
from . import events, health, sessions, streams, tasks, users, webhook
from .errors import install_error_handlers
from .limits import BodyLimit
from .openapi import documented, install_openapi

PREFIX = "/api/chat"

# Order matters: `/{id}/stream` (the AI SDK's resume path) must not shadow the others.
ALL_ROUTERS: tuple[APIRouter, ...] = (
    sessions.router,
    users.router,
    streams.router,
    tasks.router,
    webhook.router,
    events.router,
    health.router,
)


def create_app(*routers: APIRouter, title: str = "Chat streaming backend") -> FastAPI:
    app = FastAPI(
        title=title,
        version="0.1.0",
        description="Resumable chat streaming for LLM assistants (Vercel AI SDK UI message stream).",
        # Operation ids are the handlers' names, so generated clients read `create_session`.
        generate_unique_id_function=lambda route: route.name,
    )
    install_error_handlers(app)
    install_openapi(app)
    app.add_middleware(BodyLimit)
    if origins := [o.strip() for o in get_settings().cors_origins.split(",") if o.strip()]:
        # Outermost, so preflights and error answers carry the headers too.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["authorization", "content-type", "last-event-id"],
            expose_headers=["x-vercel-ai-ui-message-stream", "x-task-id", "retry-after"],
            allow_credentials=True,
            max_age=600,
        )
    for router in routers:
        app.include_router(documented(router), prefix=PREFIX)
    return app
