"""Accounts: register, login, token refresh, `me`."""
