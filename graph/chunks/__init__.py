"""Chunks: user files in storage."""
