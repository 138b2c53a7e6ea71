"""A Redis budget store whose server is killed (SIGKILL) and started again: while it is down every
call is refused at once (connection refused, well within the deadline); after the restart the
store works again without a new store object. Without persistence the server comes back empty: the
period's spend is forgotten (documented in README, "What survives what"). With ``appendonly yes``
the spend survives."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from servers import OwnRedis

from agentcost_core.budgets import Budget, BudgetEnforcer, BudgetStoreUnavailable, ScopeContext
from agentcost_core.budgets.stores.redis import RedisStore

CTX = ScopeContext(session_id="s-1")


@pytest.mark.parametrize("appendonly", [False, True], ids=["no-persistence", "appendonly"])
def test_killed_and_restarted_redis(appendonly: bool, own_redis: OwnRedis) -> None:
    if appendonly:  # the same private server, started again with an append-only file
        own_redis.kill()
        own_redis.appendonly = True
        own_redis.start()
    server = own_redis
    store = RedisStore(server.url, timeout=0.5)
    try:
        budget = Budget(usd=10, per="session", store=store)
        enforcer = BudgetEnforcer(budget)
        enforcer.settle(enforcer.reserve(CTX, model="gpt-4o-mini", input_tokens=10, max_tokens=10), cost=Decimal("2"))
        assert budget.status(session_id="s-1").spent == Decimal("2")

        server.kill()
        start = time.monotonic()
        with pytest.raises(BudgetStoreUnavailable, match="fail_closed"):
            enforcer.reserve(CTX, model="gpt-4o-mini", input_tokens=10, max_tokens=10)
        assert time.monotonic() - start < 0.5 + 0.5

        server.start()
        res = enforcer.reserve(CTX, model="gpt-4o-mini", input_tokens=10, max_tokens=10)  # the same store object
        enforcer.settle(res, cost=Decimal("1"))
        status = budget.status(session_id="s-1")
        assert status.held == 0
        assert status.spent == (Decimal("3") if appendonly else Decimal("1"))  # without persistence: $2 forgotten
        enforcer.close()
    finally:
        store.close()
