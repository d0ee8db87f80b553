"""Reset tokens derived from the reset's id (infrastructure/security/reset_tokens.py)."""

from __future__ import annotations

import re
import uuid

from hypothesis import given
from hypothesis import strategies as st

from domain.use_cases.password_reset import MAX_TOKEN_LENGTH
from infrastructure.security.reset_tokens import HmacResetTokens

URL_SAFE = re.compile(r"[A-Za-z0-9_-]{43}")


@given(first=st.uuids(), second=st.uuids(), secret=st.text(min_size=1))
def test_one_token_per_reset_and_key(first: uuid.UUID, second: uuid.UUID, secret: str) -> None:
    tokens = HmacResetTokens(secret)
    # the same reset gets the same token again (a redelivered mail task sends the same link)
    assert tokens.token(first) == HmacResetTokens(secret).token(first)
    # another reset, or another server key, another token
    assert (tokens.token(first) == tokens.token(second)) == (first == second)
    assert tokens.token(first) != HmacResetTokens(secret + "x").token(first)
    # fit for a URL fragment, and accepted by resetPassword
    assert URL_SAFE.fullmatch(tokens.token(first)) and len(tokens.token(first)) <= MAX_TOKEN_LENGTH
