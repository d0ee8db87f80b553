"""The webhooks area: endpoints, signing secrets, the delivery log."""
