"""The API process: the GraphQL app, with the tasks on its broker (run here in embedded mode)."""

from __future__ import annotations

from fastapi import FastAPI

from graph.app import build_app
from infrastructure.logging_setup import configure_process_logging
from infrastructure.settings import Settings, get_settings
from workers.runtime import embedded_tasks, task_broker


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app for `settings` (default: from the environment, as uvicorn's factory calls it).

    Called as that factory (`genhub serve --workers N`: a fresh process each), it also sets up
    the process's logging.
    """
    if settings is None:
        settings = get_settings()
        configure_process_logging(settings)
    return build_app(settings, broker=task_broker(settings), run_tasks=embedded_tasks)
