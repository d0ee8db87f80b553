"""Alembic migrations and the functions that apply them (used by `genhub migrate`)."""

import logging

# Alembic announces each of its plugins at INFO when it is imported: noise in start-up logs.
# Set here, before runner.py imports alembic.
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
