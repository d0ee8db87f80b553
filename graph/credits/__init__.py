"""Credits: balance, ledger, admin grants."""
