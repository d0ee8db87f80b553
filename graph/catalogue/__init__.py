"""Catalogue: models, presets and admin settings."""
