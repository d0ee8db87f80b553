"""/dev/outbox's Host check under generated input: only this machine's own names pass.

A DNS-rebinding page sends its own name as Host; anything that merely starts or ends like
a loopback name (`localhost.evil.example`, `127.0.0.1.nip.io`, `evil@localhost`) must fail.
"""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from graph.dev_outbox import LOOPBACK_HOSTS, _names_this_machine

#: Exactly a loopback name, optionally with a port: what the check accepts (case and outer spaces aside).
ACCEPTED = re.compile(r"(localhost|127\.0\.0\.1|\[::1\])(:[0-9]*)?")
PORTS = st.one_of(st.just(""), st.integers(0, 65535).map(lambda port: f":{port}"))


@given(st.sampled_from(sorted(LOOPBACK_HOSTS)), PORTS)
def test_this_machines_names_pass_with_any_port(name: str, port: str) -> None:
    assert _names_this_machine(name + port)
    assert _names_this_machine(f" {name.upper()}{port} ")


@given(st.text(max_size=60))
def test_any_other_host_fails(host: str) -> None:
    assert _names_this_machine(host) == (ACCEPTED.fullmatch(host.strip().lower()) is not None)


@given(st.sampled_from(sorted(LOOPBACK_HOSTS)), st.text(min_size=1, max_size=20))
def test_a_loopback_name_with_anything_around_it_fails(name: str, extra: str) -> None:
    for host in (name + "." + extra, extra + "." + name, f"{extra}@{name}", f"{name}@{extra}", name + extra):
        expected = ACCEPTED.fullmatch(host.strip().lower()) is not None
        assert _names_this_machine(host) == expected, host
