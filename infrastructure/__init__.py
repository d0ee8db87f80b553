"""Adapters to the outside world: settings, database, storage, queue, fan-out, providers."""
