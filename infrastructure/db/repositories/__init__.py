"""SQLAlchemy implementations of the domain repository ports."""
