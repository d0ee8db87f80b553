"""The address of a board invitation: a check of the text alone (never of accounts)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidInput
from domain.invitations import invited_address
from domain.users import normalize_email


def test_the_address_is_kept_as_typed_and_compared_normalised() -> None:
    address = invited_address("  Ana.Lima@Example.COM\t")
    assert address.typed == "Ana.Lima@Example.COM"
    assert address.normalised == "ana.lima@example.com" == normalize_email(address.typed)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "ana",
        "ana@",
        "@example.com",
        "ana@example",
        "a b@example.com",
        "a\x00@example.com",
        "\ud800@x.io",
        "a" * 250 + "@example.com",
    ],
)
def test_what_is_not_an_address_is_invalid_input_on_the_email_field(raw: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        invited_address(raw)
    assert [p.field for p in refused.value.fields] == ["email"]


@given(
    local=st.from_regex(r"[a-z0-9._+-]{1,30}", fullmatch=True),
    upper=st.booleans(),
    pad=st.sampled_from(["", " ", "\n"]),
)
def test_case_and_blanks_never_change_which_invitation_an_address_means(local: str, upper: bool, pad: str) -> None:
    plain = f"{local}@example.com"
    typed = pad + (plain.upper() if upper else plain) + pad
    assert invited_address(typed).normalised == invited_address(plain).normalised == plain
