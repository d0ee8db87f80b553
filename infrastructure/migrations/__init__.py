"""Alembic migrations and the functions that apply them (used by `genhub migrate`)."""
