"""The rules of a provider's waiting line (infrastructure/provider_slots.py), checked step by step against any
`ProviderSlots`: the same generated sequences run in memory (tests/unit/test_provider_lines.py) and on a real
Redis (tests/integration/test_provider_lines.py).

Each step is observed from the outside (`holders`, `waiters`) before and after it, and checked against the
rule: a generation that holds no slot is given one exactly when `held + live waiters ahead of it < limit`
(every live waiter when it is not in line; waiters holding a slot are counted once, in `held`); refused, it
stands in line with the ticket of its first refusal, and keeps it while it holds a slot (a slot given back unused
keeps its place); ending, leaving or lapsing takes it out.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from hypothesis import strategies as st

from domain.ports import ProviderSlots

PROVIDER = "kie"
LEASE = timedelta(hours=1)
#: A waiter's place lives this long after its try (long: Redis's clock moves on while a sequence runs).
WAIT = timedelta(minutes=10)
GENERATIONS = 6

#: ("try", i): generation i asks for a slot; ("end", i): it ends (slot freed, every line left); ("leave", i): it
#: leaves the lines (served by another route); ("adopt", i): it runs there whatever the limit (an adopted job);
#: ("lapse", i): it stopped trying and its place lapsed; ("limit", n): the limit becomes n; ("later", s): s
#: seconds pass (only where the store's clock can be moved).
Step = tuple[str, int]


def steps(*, later: bool) -> st.SearchStrategy[list[Step]]:
    generation = st.integers(0, GENERATIONS - 1)
    kinds = [
        st.tuples(st.just("try"), generation),
        st.tuples(st.just("try"), generation),
        st.tuples(st.just("try"), generation),
        st.tuples(st.just("end"), generation),
        st.tuples(st.just("leave"), generation),
        st.tuples(st.just("adopt"), generation),
        st.tuples(st.just("lapse"), generation),
        st.tuples(st.just("limit"), st.integers(0, 4)),
    ]
    if later:
        kinds.append(st.tuples(st.just("later"), st.sampled_from([1, 60, 599, 601, 1200])))
    return st.lists(st.one_of(*kinds), min_size=1, max_size=40)


@dataclass
class LineChecker:
    """Runs steps against `store`, checking each; `lapse` makes one waiter's place lapse (store-specific), `later`
    moves the store's clock (None where it cannot be moved)."""

    store: ProviderSlots
    lapse: Callable[[uuid.UUID], Awaitable[None]]
    later: Callable[[float], None] | None = None
    limit: int = 2
    generations: list[uuid.UUID] = field(default_factory=lambda: [uuid.uuid4() for _ in range(GENERATIONS)])
    now: float = 0.0
    #: Whom we expect in line, each with the time of its last try (its place lives `WAIT` after it).
    expected: dict[uuid.UUID, float] = field(default_factory=dict)

    async def run(self, sequence: Sequence[Step]) -> None:
        for kind, value in sequence:
            if kind == "limit":
                self.limit = value
            elif kind == "later":
                if self.later is not None:
                    self.later(value)
                    self.now += value
            else:
                await getattr(self, f"_{kind}")(self.generations[value])
            await self._line_is_as_expected()

    async def _try(self, g: uuid.UUID) -> None:
        held = set(await self.store.holders(PROVIDER))
        line = await self.store.waiters(PROVIDER)
        taken = await self.store.acquire(PROVIDER, g, limit=self.limit, lease=LEASE, wait=WAIT)
        after = await self.store.waiters(PROVIDER)
        if g in held:
            assert taken, "a holder renews its slot whatever the limit"
        else:
            if g in line:
                place = (line[g], str(g))
                ahead = [w for w, ticket in line.items() if w not in held and w != g and (ticket, str(w)) < place]
            else:
                ahead = [w for w in line if w not in held]
            assert taken == (len(held) + len(ahead) < self.limit), (len(held), len(ahead), self.limit)
        if taken:
            assert g in await self.store.holders(PROVIDER)
            # It keeps its place until it leaves the lines (a slot given back unused keeps it), and a try that is
            # given a slot takes none.
            assert after.get(g) == line.get(g), "taking a slot neither moves nor gives a ticket"
        else:
            assert g in after
            if g in line:
                assert after[g] == line[g], "the place of a waiter is kept across its tries"
            self.expected[g] = self.now
        if taken and g not in held:
            # A slot a try gives never makes them more than the limit (adopted jobs, or a lowered limit, may be).
            assert len(await self.store.holders(PROVIDER)) <= self.limit

    async def _end(self, g: uuid.UUID) -> None:
        await self.store.release(PROVIDER, g)
        await self.store.leave(g)
        self.expected.pop(g, None)
        assert g not in await self.store.holders(PROVIDER)

    async def _leave(self, g: uuid.UUID) -> None:
        await self.store.leave(g)
        self.expected.pop(g, None)

    async def _adopt(self, g: uuid.UUID) -> None:
        # It may stand in line meanwhile: it must not count itself, nor be counted twice by the others.
        await self.store.reconcile(PROVIDER, renew=[], add=[g], stale={}, lease=LEASE)

    async def _lapse(self, g: uuid.UUID) -> None:
        if g in self.expected:
            await self.lapse(g)
            self.expected.pop(g)

    async def _line_is_as_expected(self) -> None:
        live = {g for g, tried in self.expected.items() if tried + WAIT.total_seconds() > self.now}
        for g in set(self.expected) - live:
            del self.expected[g]
        assert set(await self.store.waiters(PROVIDER)) == live
