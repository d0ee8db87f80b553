"""The Mailer adapters: SMTP for deployments (smtp.py), a local outbox for the embedded default (outbox.py).

`build_mailer(settings)` (factory.py) picks one: SMTP when SMTP_HOST is set, else the outbox
in the data directory. Both deliver the same MIME message (mime.py).
"""
