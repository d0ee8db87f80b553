"""Generations: start, cancel, read, and their nested fields."""
