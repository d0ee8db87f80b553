"""Use cases: plain async functions taking their ports as keyword arguments."""
