"""The broker the worker CLI loads (`taskiq worker workers.broker:broker workers.tasks`)."""

from __future__ import annotations

from infrastructure.queue import shared_broker

broker = shared_broker()
