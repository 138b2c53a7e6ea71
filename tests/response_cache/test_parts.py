"""``CacheParts``: the recorder, engine and coalescer both faces open from the contract's arguments.
Parts on one Redis store share flights (what a flight shares crosses with its model and usage);
parts on any other store coalesce within their own process only."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from counting_server import wait_for

from agentcost_core import ConfigurationError, Ledger
from agentcost_core.response_cache import CacheParts, SharedResponse, flight_key
from agentcost_core.usage import Usage


def parts(store: str, **kwargs: Any) -> CacheParts:
    return CacheParts(store, ledger=Ledger("memory://"), framework="test", **kwargs)


def test_parts_on_one_redis_store_share_flights_and_the_response_crosses_with_its_usage(redis_cache_store: str) -> None:
    a, b = parts(redis_cache_store), parts(redis_cache_store)  # two "processes"
    request = b.engine.request(model="gpt-4o-mini", messages='["What is the capital of France?"]', params="{}")
    owner = a.coalescer.join(flight_key(request))  # type: ignore[union-attr]
    assert owner.owner
    got: list[Any] = []
    join = b.coalescer.join  # type: ignore[union-attr]
    waiter = threading.Thread(target=lambda: got.append(join(flight_key(request)).wait(30)))
    waiter.start()
    wait_for(lambda: a.waiting() == 1 and b.waiting() == 1)  # seen from either side
    usage = Usage(input=1200, cache_read=200, output=300)
    owner.resolve(SharedResponse('{"text":"Paris."}', model="gpt-4o-mini-2024-07-18", usage=usage, response=object()))
    waiter.join()
    [shared] = got
    assert (shared.payload, shared.model, shared.usage.as_dict()) == ('{"text":"Paris."}', "gpt-4o-mini-2024-07-18",
                                                                      usage.as_dict())  # fmt: skip
    assert shared.response is None  # the owner's object stays in its process
    hit = b.landed(request, shared)
    assert (hit.layer, hit.entry.model, hit.entry.usage) == ("coalesced", "gpt-4o-mini-2024-07-18", shared.usage)
    assert b.engine.stats["coalesced"].hits == 1 and a.waiting() == b.waiting() == 0


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_parts_on_another_store_coalesce_within_their_own_process(kind: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = "memory://" if kind == "memory" else f"sqlite:///{tmp_path / 'cache.db'}"
    a, b = parts(store), parts(store)
    request = a.engine.request(model="gpt-4o-mini", messages='["q"]', params="{}")
    key = flight_key(request)
    first, second, third = a.coalescer.join(key), b.coalescer.join(key), a.coalescer.join(key)  # type: ignore[union-attr]
    assert (first.owner, second.owner, third.owner) == (True, True, False)
    assert a.waiting() == 1 and b.waiting() == 0
    first.resolve(SharedResponse("{}"))
    second.abandon()
    assert third.wait(1) == SharedResponse("{}")


def test_without_coalescing_there_is_no_coalescer_and_nobody_waits() -> None:
    p = parts("memory://", coalesce=False)
    assert p.coalescer is None and p.waiting() == 0


@pytest.mark.parametrize("kwargs", [{"coalesce": "yes"}, {"ttl": -1}, {"threshold": 2}, {"scope": ("nope",)}])
def test_bad_arguments_fail_at_construction(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        parts("memory://", **kwargs)
