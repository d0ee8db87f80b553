"""The API process: the GraphQL app, with the tasks on its broker (run here in embedded mode)."""

from __future__ import annotations

from fastapi import FastAPI

from graph.app import build_app
from infrastructure.settings import Settings, get_settings
from workers.runtime import embedded_tasks, task_broker


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app for `settings` (default: from the environment, as uvicorn's factory calls it)."""
    settings = settings or get_settings()
    return build_app(settings, broker=task_broker(settings), run_tasks=embedded_tasks)
