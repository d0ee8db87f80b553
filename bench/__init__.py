"""Benchmarks: scripts that print numbers (run them by hand; see docs/benchmarks.md)."""
