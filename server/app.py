"""The FastAPI application: routes, and the start and stop of everything it runs."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from server import runtime, secretbox
from server.csrf import CSRF
from server.db import migrate, sessions_for
from server.routes import (
    api,
    auth,
    contact_data,
    contacts,
    conversations,
    flows,
    gateway,
    health,
    inbox_api,
    instances,
    kb,
    model_versions,
    openai_compat,
    pages,
    people,
    reports,
    schedules,
    simulator,
    webhooks,
)
from server.services import api_tokens, demo, leases, recovery
from server.services import auth as auth_service
from server.services import instances as instance_service
from server.settings import Settings, get_settings
from server.tasks import requeue, watch_gateways
from server.web import errors as web_errors

STATIC = Path(__file__).parent / "static"

log = logging.getLogger(__name__)


def resume(settings: Settings) -> None:
    """Requeue what a previous run left: turns waiting or cut off, replies not yet sent.

    Safe beside other live workers: what they hold is skipped by its lease. On the embedded
    defaults this process is the only worker (it holds the data folder's vector store locked),
    so the leases a killed predecessor left are dropped and its turn is redone at once.
    """
    sessions = sessions_for(settings.sqlalchemy_url)
    if settings.only_worker:
        leases.clear_all(sessions)
    convs, boxes = recovery.unfinished(sessions)
    requeue(convs, boxes)
    watch_gateways.fn()  # the periodic watch starts on the next minute; this covers the first
    if convs or boxes:
        log.info("resumed %d conversations and %d unsent replies", len(convs), len(boxes))


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    settings.ensure_dirs()
    migrate(settings.sqlalchemy_url)
    if settings.admin_token:
        api_tokens.ensure_setting(sessions_for(settings.sqlalchemy_url),
                                  settings.admin_token.get_secret_value())
    own_runtime = False
    try:
        runtime.current()
    except RuntimeError:
        runtime.start(settings)
        own_runtime = True
    if settings.simulator_enabled:
        instance_service.ensure_simulator(sessions_for(settings.sqlalchemy_url),
                                          demo.SIMULATOR_INSTANCE, settings.public_url)
    consumer = None
    if settings.run_consumer:
        from server.queue import start_consumer

        consumer = start_consumer(settings.queue_workers)
        resume(settings)
    try:
        yield
    finally:
        if consumer is not None:
            consumer.stop(graceful=True)
        if own_runtime:
            runtime.stop()


async def _invalid_request(request: Request, exc: Exception) -> Response:
    """FastAPI's 422, in ASCII JSON: the input it echoes back may hold a lone surrogate (valid
    in JSON, not in UTF-8), and rendering that as UTF-8 turned the 422 into a 500."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else [{"msg": str(exc)}]
    return Response(json.dumps({"detail": jsonable_encoder(errors)}, ensure_ascii=True),
                    status_code=422, media_type="application/json")


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app; heavy parts load at start-up (see ``lifespan``)."""
    app = FastAPI(
        title="Atende",
        description="Atendimento no WhatsApp com assistente de IA fundamentado nos documentos "
        "da empresa, fluxos e atendentes humanos.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings = settings or get_settings()
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_middleware(CSRF, secret=secretbox.derived_key(settings, "csrf"),
                       session_cookie=auth_service.COOKIE,
                       secure=settings.public_url.startswith("https://"))
    app.include_router(auth.router)
    app.include_router(webhooks.router)
    app.include_router(health.router)
    app.include_router(api.router)
    app.include_router(openai_compat.router)
    app.include_router(instances.router)
    app.include_router(flows.router)
    app.include_router(conversations.router)
    app.include_router(inbox_api.router)
    app.include_router(schedules.router)
    app.include_router(contact_data.router)
    app.include_router(contacts.router)
    app.include_router(people.router)
    app.include_router(gateway.router)
    app.include_router(reports.router)
    app.include_router(kb.router)
    app.include_router(model_versions.router)
    if settings.simulator_enabled:
        app.include_router(simulator.router)
    app.include_router(pages.router)
    app.add_exception_handler(HTTPException, web_errors.http_error)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
