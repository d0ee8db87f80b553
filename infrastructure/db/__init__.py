"""Relational persistence: engine, ORM models, repositories and the unit of work."""
