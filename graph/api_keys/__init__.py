"""API keys: the viewer's (or, for administrators, any user's), created, listed and revoked."""
