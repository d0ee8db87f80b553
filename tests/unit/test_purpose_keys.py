"""Each use of the URL secret has a key of its own (Settings.purpose_secret): a throttle key name,
which hashes client text, never reveals the key of reset tokens or of signed URLs."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from graph.throttle import account_key
from infrastructure.settings import Settings

PURPOSES = ("throttle-keys", "reset-tokens", "url-signing")
SETTINGS = Settings(_env_file=None, url_signing_secret="u" * 40, data_dir=Path("/nonexistent"))


def test_every_purpose_has_its_own_key() -> None:
    keys = [SETTINGS.purpose_secret(p) for p in PURPOSES]
    assert len({*keys, SETTINGS.effective_url_secret}) == len(PURPOSES) + 1
    # the same on every process given the same secret
    again = Settings(_env_file=None, url_signing_secret="u" * 40, data_dir=Path("/elsewhere"))
    assert keys == [again.purpose_secret(p) for p in PURPOSES]


@given(
    email=st.sampled_from(["genhub password reset tokens", "genhub/v1/reset-tokens", "genhub url signing"]) | st.text()
)
def test_no_throttle_key_name_is_part_of_another_key(email: str) -> None:
    # given a login with any e-mail, the labels of key derivation included
    name = account_key(email, SETTINGS.purpose_secret("throttle-keys"))
    # then the bucket's name is no part of any other key, nor of a key derived from the secret by that label
    master = SETTINGS.effective_url_secret.encode()
    raw = hmac.new(master, email.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
    for other in [*(SETTINGS.purpose_secret(p) for p in PURPOSES if p != "throttle-keys"), raw]:
        assert name not in other
