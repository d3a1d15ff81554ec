"""Infrastructure faults into the report's ``chaos`` facts, beside the chaos engine's own."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pytest

    from pytest_reliability._facts import TestFacts
    from pytest_reliability.chaos_infra._proxy import FaultProxy


def record_chaos_faults(facts: TestFacts, records: Iterable[dict[str, Any]]) -> None:
    """Append fault ``records`` (``{target, kind, trigger, fired}``) to ``facts.chaos``.

    Merges with what is already there (``faults`` extended, ``injected`` and ``fired`` summed
    again), so container, proxy and chaos-engine faults of one test land in one list, whichever
    fixture finishes first. With no records it still writes the (empty) section, as the
    ``chaos`` fixture does for a test that armed nothing.
    """
    records = [dict(r) for r in records]
    facts.categories.add("chaos")
    faults = [*(facts.get("chaos", "faults") or []), *records]
    facts.set("chaos", "faults", faults)
    facts.set("chaos", "injected", len(faults))
    facts.set("chaos", "fired", sum(int(f.get("fired", 0)) for f in faults))


def open_recorded_proxy(request: pytest.FixtureRequest, host: str, port: int) -> FaultProxy:
    """Open a :class:`FaultProxy` in front of ``host:port`` for the test ``request`` serves.

    The proxy is closed after the test, pass or fail, and its faults recorded in the test's
    ``chaos`` facts. This is how the ``chaos`` fixture offers a proxy: ``chaos.proxy(host, port)``
    calls it with its own request.
    """
    from pytest_reliability._facts import facts_for
    from pytest_reliability.chaos_infra._proxy import FaultProxy

    proxy = FaultProxy(host, port)
    facts = facts_for(request)

    def finish() -> None:
        try:
            proxy.close()
        finally:
            record_chaos_faults(facts, proxy.faults())

    request.addfinalizer(finish)
    return proxy
