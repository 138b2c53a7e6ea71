"""One contract for every budget counter store (memory, SQLite, Redis, PostgreSQL), the no-overspend
acceptance (1,000 concurrent reservations on one $1.00 hard cap: 4 processes for the shared stores,
threads and asyncio tasks for the in-process one), and unreachable stores."""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from agentcost_core.budgets.stores import (
    BudgetStoreUnavailable,
    Claim,
    Counters,
    MemoryStore,
    open_store,
    usd_to_units,
)
from agentcost_core.budgets.stores.postgres import PostgresStore
from agentcost_core.budgets.stores.redis import RedisStore
from agentcost_core.budgets.stores.sqlite import SQLiteStore
from agentcost_core.errors import ConfigurationError
from processes_together import run_together

NOW = 1_700_000_000.0
CAP = usd_to_units(Decimal("1.00"))
CENT = usd_to_units(Decimal("0.01"))
services = pytest.mark.services


# -- stores --------------------------------------------------------------------------------------


def _unique() -> str:
    return uuid.uuid4().hex[:12]


def _open(spec: tuple[str, ...]):  # type: ignore[no-untyped-def]
    """A store from a picklable spec (the multi-process workers open their own)."""
    kind = spec[0]
    if kind == "memory":
        return MemoryStore()
    if kind == "sqlite":
        return SQLiteStore(spec[1])
    if kind == "redis":
        return RedisStore(spec[1], prefix=spec[2])
    if kind == "postgres":
        return PostgresStore(spec[1], table=spec[2])
    raise AssertionError(kind)


def _spec(kind: str, request: pytest.FixtureRequest, tmp_path) -> tuple[str, ...]:  # type: ignore[no-untyped-def]
    if kind == "memory":
        return ("memory",)
    if kind == "sqlite":
        return ("sqlite", f"sqlite:///{tmp_path}/budgets.db")
    if kind == "redis":
        return ("redis", request.getfixturevalue("redis_url"), f"agentcost-test:{_unique()}:")
    if kind == "postgres":
        return ("postgres", request.getfixturevalue("postgres_url"), f"agentcost_test_budget_{_unique()}")
    raise AssertionError(kind)


def _drop_tables(url: str, table: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}, {table}_holds")


def _cleanup(spec: tuple[str, ...], store) -> None:  # type: ignore[no-untyped-def]
    if spec[0] == "redis":
        store.reset()
        assert not list(store.client.scan_iter(match=spec[2] + "*"))
    store.close()
    if spec[0] == "postgres":
        _drop_tables(spec[1], spec[2])


ALL = ["memory", "sqlite", pytest.param("redis", marks=services), pytest.param("postgres", marks=services)]
SHARED = ["sqlite", pytest.param("redis", marks=services), pytest.param("postgres", marks=services)]


@pytest.fixture(params=ALL)
def spec(request, tmp_path):  # type: ignore[no-untyped-def]
    return _spec(request.param, request, tmp_path)


@pytest.fixture
def store(spec):  # type: ignore[no-untyped-def]
    s = _open(spec)
    yield s
    _cleanup(spec, s)


def usd(limit: int | None = None, amount: int = 0, *, key: str = "k", hard: bool = True, ttl: int | None = None):  # type: ignore[no-untyped-def]
    """A claim limited in USD units only."""
    return Claim(key, (limit, None, None, None), (amount, 0, 0, 0), ttl=ttl, hard=hard)


# -- the contract (every test taking ``store`` runs on each of the four backends) -----------------


def test_read_of_a_missing_key_is_zeros(store):
    assert store.read("nothing-here") == Counters()


def test_admits_while_it_fits_then_refuses_without_changing_anything(store):
    claim = usd(100, 30)
    for i in range(3):
        res = store.reserve([claim], NOW + i)
        assert res.admitted and res.refused is None and res.dimension is None
        assert res.counters[0].held == (30 * (i + 1), 0, 0, 0)
    before = store.read("k")
    res = store.reserve([claim], NOW + 3)
    assert not res.admitted
    assert (res.refused, res.dimension) == (0, 0)
    assert res.counters[0] == before  # the counters as they stood
    assert store.read("k") == before == Counters((0, 0, 0, 0), (90, 0, 0, 0), NOW)
    # exactly at the limit fits (spent + held + amount <= limit)
    assert store.reserve([usd(100, 10)], NOW + 4).admitted
    assert not store.reserve([usd(100, 1)], NOW + 5).admitted


def test_refusal_names_the_dimension_and_unlimited_dimensions_never_refuse(store):
    claim = Claim("k", (None, 1_000, 2, None), (10**15, 400, 1, 7))
    assert store.reserve([claim], NOW).admitted
    assert store.reserve([claim], NOW).admitted  # tokens 800, calls 2: still fits
    res = store.reserve([claim], NOW)
    assert (res.admitted, res.refused, res.dimension) == (False, 0, 1)  # tokens (first in order)
    assert store.read("k").held == (2 * 10**15, 800, 2, 14)
    res = store.reserve([Claim("k", (None, None, 2, None), (0, 0, 1, 0))], NOW)
    assert (res.admitted, res.dimension) == (False, 2)
    # a zero amount is never refused, even on a full dimension
    assert store.reserve([Claim("k", (None, None, 2, None), (0, 0, 0, 5))], NOW).admitted


def test_soft_claims_are_never_refused_but_counted(store):
    soft = usd(10, 8, hard=False)
    for _ in range(3):
        assert store.reserve([soft], NOW).admitted
    assert store.read("k").held == (24, 0, 0, 0)
    # a hard claim on the same key sees what the soft ones hold
    res = store.reserve([usd(30, 7)], NOW)
    assert (res.admitted, res.refused) == (False, 0)
    store.settle([soft], (9, 0, 0, 0))
    assert store.read("k") == Counters((9, 0, 0, 0), (16, 0, 0, 0), NOW)


def test_several_keys_are_reserved_atomically(store):
    assert store.reserve([usd(100, 100, key="b")], NOW).admitted  # b is full
    before_a = store.read("a")
    res = store.reserve([usd(100, 10, key="a"), usd(None, 10, key="soft", hard=False), usd(100, 1, key="b")], NOW)
    assert (res.admitted, res.refused, res.dimension) == (False, 2, 0)
    assert store.read("a") == before_a == Counters()
    assert store.read("soft") == Counters()
    assert store.read("b").held == (100, 0, 0, 0)
    res = store.reserve([usd(100, 10, key="a"), usd(None, 10, key="soft", hard=False), usd(200, 1, key="b")], NOW)
    assert res.admitted
    assert [c.held[0] for c in res.counters] == [10, 10, 101]
    assert [store.read(k).held[0] for k in ("a", "soft", "b")] == [10, 10, 101]


def test_settle_moves_held_to_spent_at_the_actual_amounts(store):
    claims = [Claim("a", (1_000, 500, None, None), (100, 50, 1, 0)), Claim("b", (None,) * 4, (100, 50, 1, 0))]
    assert store.reserve(claims, NOW).admitted
    assert store.reserve(claims, NOW).admitted
    after = store.settle(claims, (30, 20, 1, 0))  # cheaper than held
    assert after[0] == after[1] == Counters((30, 20, 1, 0), (100, 50, 1, 0), NOW)
    after = store.settle(claims, (250, 90, 1, 2))  # dearer than held
    assert after[0] == Counters((280, 110, 2, 2), (0, 0, 0, 0), NOW)
    assert store.read("b") == Counters((280, 110, 2, 2), (0, 0, 0, 0), NOW)
    # settled spend counts against the limit like held amounts do
    assert not store.reserve([Claim("a", (1_000, None, None, None), (721, 0, 0, 0))], NOW).admitted
    assert store.reserve([Claim("a", (1_000, None, None, None), (720, 0, 0, 0))], NOW).admitted


def test_settle_and_release_never_leave_held_below_zero(store):
    claim = usd(100, 40)
    assert store.reserve([claim], NOW).admitted
    store.settle([claim], (40, 0, 0, 0))
    assert store.settle([claim], (5, 0, 0, 0))[0] == Counters((45, 0, 0, 0), (0, 0, 0, 0), NOW)
    assert store.release([claim])[0].held == (0, 0, 0, 0)


def test_release_returns_the_held_amounts(store):
    claims = [Claim("a", (100, None, None, None), (60, 10, 1, 0)), usd(None, 60, key="b", hard=False)]
    assert store.reserve(claims, NOW).admitted
    assert not store.reserve(claims, NOW).admitted
    after = store.release(claims)
    assert after[0] == Counters((0, 0, 0, 0), (0, 0, 0, 0), NOW)
    assert store.read("b") == Counters((0, 0, 0, 0), (0, 0, 0, 0), NOW)
    assert store.reserve(claims, NOW).admitted  # the room is back


def test_started_is_set_by_the_first_reservation_and_kept(store):
    claim = usd(None, 1)
    assert store.reserve([claim], NOW + 0.125).counters[0].started == NOW + 0.125
    assert store.reserve([claim], NOW + 50).counters[0].started == NOW + 0.125
    store.settle([claim], (1, 0, 0, 0))
    assert store.read("k").started == NOW + 0.125
    assert not store.reserve([usd(0, 1)], NOW + 60).admitted  # a refusal does not touch it either
    assert store.read("k").started == NOW + 0.125


def test_reset_forgets_one_key_or_all(store):
    for key in ("a", "b", "c"):
        assert store.reserve([usd(100, 10, key=key)], NOW).admitted
    store.reset("a")
    assert store.read("a") == Counters()
    assert store.read("b").held == (10, 0, 0, 0)
    store.reset()
    assert store.read("b") == store.read("c") == Counters()
    assert store.reserve([usd(100, 100, key="b")], NOW).admitted  # usable after a reset


def test_ttl_an_expired_key_reads_as_a_fresh_period(store, spec):
    claim = usd(100, 60, ttl=3_600)
    assert store.reserve([claim], NOW).admitted
    store.settle([claim], (60, 0, 0, 0))
    if spec[0] == "redis":
        client, name = store.client, spec[2] + "k"
        assert 3_590 <= client.ttl(name) <= 3_600
        assert store.reserve([usd(100, 1, ttl=60)], NOW).admitted  # a shorter ttl never shortens it
        assert 3_590 <= client.ttl(name) <= 3_600
        assert store.reserve([usd(100, 1, ttl=7_200)], NOW).admitted  # a longer one extends it
        assert 7_190 <= client.ttl(name) <= 7_200
        store.release([usd(100, 1, ttl=60)] * 2)
        assert 7_190 <= client.ttl(name) <= 7_200  # settle / release keep it
        assert not store.reserve([claim], NOW).admitted
        client.pexpire(name, 20)  # the period ends
        time.sleep(0.1)
    else:
        assert not store.reserve([claim], NOW + 3_599).admitted  # not yet expired
        assert store.read("k").spent == (60, 0, 0, 0)
    res = store.reserve([claim], NOW + 3_601)
    assert res.admitted
    assert res.counters[0] == Counters((0, 0, 0, 0), (60, 0, 0, 0), NOW + 3_601)
    assert store.read("k") == Counters((0, 0, 0, 0), (60, 0, 0, 0), NOW + 3_601)


def test_a_key_without_ttl_never_expires(store, spec):
    assert store.reserve([usd(100, 60)], NOW).admitted
    assert not store.reserve([usd(100, 60)], NOW + 10**9).admitted
    if spec[0] == "redis":
        assert store.client.ttl(spec[2] + "k") == -1


def test_large_usd_amounts_stay_exact(store):
    # Redis compares in Lua doubles: exact up to 2**53 units (~$900,000 per key at 1e-10 USD)
    limit = 2**53 - 1
    assert store.reserve([usd(limit, limit - 1)], NOW).admitted
    assert store.reserve([usd(limit, 1)], NOW).admitted
    assert not store.reserve([usd(limit, 1)], NOW).admitted
    store.settle([usd(limit, limit - 1)], (limit - 2, 0, 0, 0))
    assert store.read("k") == Counters((limit - 2, 0, 0, 0), (1, 0, 0, 0), NOW)


async def test_async_forms(store):
    claim = usd(100, 40)
    assert (await store.areserve([claim], NOW)).admitted
    assert (await store.areserve([claim], NOW)).admitted
    assert not (await store.areserve([claim], NOW)).admitted
    assert (await store.asettle([claim], (35, 0, 0, 0)))[0] == Counters((35, 0, 0, 0), (40, 0, 0, 0), NOW)
    assert (await store.arelease([claim]))[0] == Counters((35, 0, 0, 0), (0, 0, 0, 0), NOW)


# -- no overspend under concurrency ----------------------------------------------------------------

CALLS_PER_PROCESS = 250
PROCESSES = 4
ERROR_RATE = 0.1


def _cap_claim(key: str) -> Claim:
    return Claim(key, (CAP, None, None, None), (CENT, 100, 1, 0), ttl=3_600)


def _one_call(store, claim: Claim, rng: random.Random, error_rate: float) -> str:  # type: ignore[no-untyped-def]
    if not store.reserve([claim], time.time()).admitted:
        return "refused"
    time.sleep(rng.random() / 1_000)  # the model call: holds overlap
    if rng.random() < error_rate:
        store.release([claim])
        return "released"
    store.settle([claim], claim.amounts)
    return "settled"


def _run_threads(store, key: str, calls: int, threads: int, error_rate: float, seed: int) -> dict[str, int]:  # type: ignore[no-untyped-def]
    claim = _cap_claim(key)
    lock = threading.Lock()
    rngs: dict[int, random.Random] = {}

    def call(i: int) -> str:
        with lock:
            rng = rngs.setdefault(threading.get_ident(), random.Random(seed * 1_000 + len(rngs)))
        return _one_call(store, claim, rng, error_rate)

    with ThreadPoolExecutor(threads) as pool:
        outcomes = list(pool.map(call, range(calls)))
    return {k: outcomes.count(k) for k in ("refused", "released", "settled")}


def _worker(spec, key, error_rate, seed, barrier, results) -> None:  # type: ignore[no-untyped-def]
    try:
        store = _open(spec)
        store.read(key)  # connect before the start line
        barrier.wait(timeout=60)
        results.put(_run_threads(store, key, CALLS_PER_PROCESS, 24, error_rate, seed))
        store.close()
    except Exception as e:  # noqa: BLE001 - reported to the parent, which fails the test
        results.put({"error": f"{type(e).__name__}: {e}"})


def _check_totals(store, key: str, totals: dict[str, int], error_rate: float, calls: int) -> None:  # type: ignore[no-untyped-def]
    assert sum(totals.values()) == calls
    c = store.read(key)
    settled = totals["settled"]
    assert c.held == (0, 0, 0, 0), "a reservation was left behind"
    assert c.spent == (settled * CENT, settled * 100, settled, 0)
    assert c.spent[0] <= CAP
    if error_rate == 0:
        assert totals["released"] == 0
        assert settled == 100 and c.spent[0] == CAP  # exactly $1.00: nothing over, nothing lost
    else:
        admitted = settled + totals["released"]
        assert admitted - totals["released"] == settled
        assert totals["released"] > 0 and 0 < settled <= 100


@pytest.mark.parametrize("spec", SHARED, indirect=True)
@pytest.mark.parametrize("error_rate", [0.0, ERROR_RATE], ids=["clean", "errors"])
def test_no_overspend_across_processes(spec, store, error_rate):
    key = f"global:{_unique()}"
    outs = run_together(
        _worker, [(spec, key, error_rate, seed) for seed in range(PROCESSES)], start="spawn", timeout=120
    )
    errors = [o["error"] for o in outs if "error" in o]
    assert not errors, errors
    totals = {k: sum(o[k] for o in outs) for k in ("refused", "released", "settled")}
    _check_totals(store, key, totals, error_rate, PROCESSES * CALLS_PER_PROCESS)


@pytest.mark.parametrize("spec", ["memory"], indirect=True)
@pytest.mark.parametrize("error_rate", [0.0, ERROR_RATE], ids=["clean", "errors"])
def test_no_overspend_with_64_threads(store, error_rate):
    totals = _run_threads(store, "global", 1_000, 64, error_rate, seed=7)
    _check_totals(store, "global", totals, error_rate, 1_000)


@pytest.mark.parametrize("spec", ["memory"], indirect=True)
@pytest.mark.parametrize("error_rate", [0.0, ERROR_RATE], ids=["clean", "errors"])
async def test_no_overspend_with_200_asyncio_tasks(store, error_rate):
    claim = _cap_claim("global")
    rng = random.Random(11)
    outcomes: list[str] = []

    async def task() -> None:
        for _ in range(5):
            if not (await store.areserve([claim], time.time())).admitted:
                outcomes.append("refused")
                continue
            await asyncio.sleep(rng.random() / 1_000)
            if rng.random() < error_rate:
                await store.arelease([claim])
                outcomes.append("released")
            else:
                await store.asettle([claim], claim.amounts)
                outcomes.append("settled")

    await asyncio.gather(*(task() for _ in range(200)))
    totals = {k: outcomes.count(k) for k in ("refused", "released", "settled")}
    _check_totals(store, "global", totals, error_rate, 1_000)


# -- unreachable and misconfigured stores ------------------------------------------------------------


def test_unreachable_redis_fails_on_first_use_not_at_construction():
    store = RedisStore("redis://127.0.0.1:1/0")  # nothing listens on port 1
    with pytest.raises(BudgetStoreUnavailable, match=r"Redis budget store redis://127\.0\.0\.1:1/0 unavailable"):
        store.reserve([usd(100, 1)], NOW)
    with pytest.raises(BudgetStoreUnavailable, match="Connection refused|connecting"):
        store.ping()
    with pytest.raises(BudgetStoreUnavailable):
        store.settle([usd(100, 1)], (1, 0, 0, 0))
    assert RedisStore("redis://127.0.0.1:1/0", failure_mode="fail_open").failure_mode == "fail_open"


def test_unreachable_postgres_fails_on_first_use_not_at_construction():
    store = PostgresStore("postgresql://postgres:secret@127.0.0.1:1/test")
    with pytest.raises(
        BudgetStoreUnavailable, match=r"PostgreSQL budget store .*127\.0\.0\.1:1/test.*unavailable"
    ) as e:
        store.reserve([usd(100, 1)], NOW)
    assert "secret" not in str(e.value)
    with pytest.raises(BudgetStoreUnavailable, match="refused"):
        store.read("k")


def test_sqlite_in_an_uncreatable_folder_is_a_clear_error():
    with pytest.raises((ConfigurationError, BudgetStoreUnavailable), match="/proc/agentcost-nope/budgets.db"):
        SQLiteStore("sqlite:////proc/agentcost-nope/budgets.db")


def test_bad_configuration_is_refused_at_construction(tmp_path):
    with pytest.raises(ConfigurationError, match="memory://"):
        SQLiteStore("sqlite:///:memory:")
    with pytest.raises(ConfigurationError, match="sqlite:///"):
        SQLiteStore("sqlite://")
    with pytest.raises(ConfigurationError, match="failure_mode"):
        SQLiteStore(tmp_path / "b.db", failure_mode="maybe")
    with pytest.raises(ConfigurationError, match="table"):
        PostgresStore("postgresql://postgres@127.0.0.1:1/test", table="x; DROP TABLE y")
    with pytest.raises(ConfigurationError, match="failure_mode"):
        RedisStore("redis://127.0.0.1:1/0", failure_mode="open")
    with pytest.raises(ConfigurationError):
        RedisStore("http://127.0.0.1:1/0")


def test_open_store_builds_each_backend_from_its_url(tmp_path):
    sqlite = open_store(f"sqlite:///{tmp_path}/o.db")
    assert isinstance(sqlite, SQLiteStore) and sqlite.shared and sqlite.path == f"{tmp_path}/o.db"
    assert open_store(f"sqlite:///{tmp_path}/o.db") is sqlite
    assert isinstance(open_store("redis://127.0.0.1:1/0"), RedisStore)
    assert isinstance(open_store("postgresql://postgres@127.0.0.1:1/test"), PostgresStore)


def _first_call(spec, barrier, results) -> None:  # type: ignore[no-untyped-def]
    try:
        store = _open(spec)
        barrier.wait(timeout=30)
        store.read("k")  # the first call creates the table
        store.close()
        results.put("ok")
    except Exception as e:  # noqa: BLE001 - reported to the parent
        results.put(f"{type(e).__name__}: {e}")


@pytest.mark.parametrize("spec", [pytest.param("postgres", marks=services)], indirect=True)
def test_processes_starting_at_once_on_a_fresh_table_all_get_through(spec, store):
    """Concurrent CREATE TABLE IF NOT EXISTS can fail in PostgreSQL (``type … already exists``):
    the store creates its table under an advisory lock, so no first call is refused."""
    for round_ in range(8):
        table = f"{spec[2]}_{round_}"
        try:
            outcomes = run_together(_first_call, [((*spec[:2], table),)] * 6)
        finally:
            _drop_tables(spec[1], table)
        assert outcomes == ["ok"] * 6


def _fork_child(spec, key, results) -> None:  # type: ignore[no-untyped-def]
    results.put(_STORE_IN_PARENT[0].reserve([usd(100, 10, key=key)], NOW).admitted)


_STORE_IN_PARENT: list = []


@pytest.mark.parametrize("spec", SHARED, indirect=True)
def test_a_forked_child_opens_its_own_connections(spec, store):
    """A connection inherited through fork() is neither used nor closed by the child."""
    assert store.reserve([usd(100, 10)], NOW).admitted  # the parent's connection is open
    _STORE_IN_PARENT[:] = [store]
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    child = ctx.Process(target=_fork_child, args=(spec, "k", results))
    child.start()
    try:
        assert results.get(timeout=30) is True
    finally:
        child.join(timeout=30)
        _STORE_IN_PARENT.clear()
    assert child.exitcode == 0
    assert store.reserve([usd(100, 10)], NOW).admitted  # and the parent's still works
    assert store.read("k").held == (30, 0, 0, 0)


@services
def test_redis_store_takes_a_client_and_resets_only_its_prefix(redis_url):
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    base = f"agentcost-test:{_unique()}:"
    mine = RedisStore(client=client, prefix=base + "[a]*?:")
    other = RedisStore(redis_url, prefix=base + "a-other:")
    try:
        assert mine.reserve([usd(100, 10, ttl=60)], NOW + 0.5).admitted
        assert other.reserve([usd(100, 10)], NOW).admitted
        assert mine.read("k") == Counters((0, 0, 0, 0), (10, 0, 0, 0), NOW + 0.5)
        mine.ping()
        mine.reset()
        assert mine.read("k") == Counters()
        assert other.read("k").held == (10, 0, 0, 0)
        mine.close()
        assert client.ping()  # a client passed in stays open: it is the caller's
    finally:
        other.reset()
        other.close()
        client.close()
    with pytest.raises(ConfigurationError, match="one of the two"):
        RedisStore(redis_url, client=client)


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf"), True, "5"])
def test_store_deadlines_must_be_a_positive_number_of_seconds(timeout, tmp_path):
    with pytest.raises(ConfigurationError, match="timeout"):
        RedisStore("redis://127.0.0.1:1/0", timeout=timeout)
    with pytest.raises(ConfigurationError, match="timeout"):
        PostgresStore("postgresql://postgres@127.0.0.1:1/test", timeout=timeout)
    with pytest.raises(ConfigurationError, match="timeout"):
        PostgresStore("postgresql://postgres@127.0.0.1:1/test", connect_timeout=timeout)
    with pytest.raises(ConfigurationError, match="timeout"):
        SQLiteStore(tmp_path / "b.db", timeout=timeout)


def test_an_unreachable_store_answers_within_its_deadline_and_has_nothing_to_cancel():
    store = RedisStore("redis://127.0.0.1:1/0", timeout=0.2)
    start = time.monotonic()
    with pytest.raises(BudgetStoreUnavailable):
        store.reserve([usd(100, 1)], NOW)  # no lease: nothing could be held under an id
    assert time.monotonic() - start < 1.0
    assert store.pending_cancels() == 0
    assert MemoryStore().pending_cancels() == 0
