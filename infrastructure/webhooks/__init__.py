"""Outgoing webhooks, the network side: which URLs may be called (SSRF rules) and the HTTP sender."""
