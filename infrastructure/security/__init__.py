"""Password hashing and token issuing/verification."""
