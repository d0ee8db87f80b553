"""Administration: accounts as admins see them, suspension, the audit log."""
