"""``agentcost report`` over big ledgers against a bare SQL ``GROUP BY`` over the same file, in the same run.

    python tests/benchmarks/bench_report.py [--quick] [--n 300000] [--postgres]
    AGENTCOST_BENCH_10M=1 python tests/benchmarks/bench_report.py       # also 1,000,000 and 10,000,000

A ledger of N events (12 features, 5 models, 1,000 users, sessions of 10 calls in one feature, a third
with cache reads, 30 days) is generated inside the database by SQL (a recursive CTE on SQLite, ``generate_series``
on PostgreSQL), with the same columns the ledger writes. The rollup tables (schema version 5) are then
summed from the events by the statements the version 4 → 5 migration runs (PostgreSQL's trigger that
keeps them on every insert is off during the bulk insert, then on; the build's time is printed). PostgreSQL runs in
a schema of this run's own in the ``agentcost_bench`` database, dropped at the end. Then, each in a fresh
Python process (so the RSS is the process's own peak, ``ru_maxrss``):

* **report table / json** — ``agentcost report --ledger URL --by feature`` (``--format json``), and
  ``--by model,day --format json``: the whole report (calls, tokens, exact cost, cache savings,
  p50/p95/p99 per call and per session, unpriced calls, notices).
* **bare GROUP BY** (the anchor) — ``SELECT feature, COUNT(*), SUM(input), SUM(cache_read), SUM(output),
  SUM(cost_nanos) FROM events GROUP BY feature`` through the database driver: the least a report
  could read (PostgreSQL: ``SUM(cost)``).
* **Python rollup** (the code before; N ≤ 300,000 only) — ``rollup(ledger.iter_events())``: every row
  loaded into Python.

Reported: seconds, ratio to the bare GROUP BY, peak RSS. Checked: the report's total cost equals an
independent exact sum of the generated costs (computed in Python from the generating formula).
Target (issue 16): at 10,000,000 events ≤ 3x the bare GROUP BY and ≤ 300 MB RSS.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench

ROOT = Path(__file__).resolve().parents[2]
FEATURES = 12
#: Price per token in pico-dollars (input, output, cache read) of the five models, by ``i % 5``.
MODELS = [
    ("gpt-4o", 2_500_000, 10_000_000, 1_250_000),
    ("gpt-4o-mini", 150_000, 600_000, 75_000),
    ("claude-sonnet-4-5", 3_000_000, 15_000_000, 300_000),
    ("gpt-5-nano", 50_000, 400_000, 5_000),
    ("gemini-2.5-flash", 300_000, 2_500_000, 30_000),
]
T0 = 1_790_000_000.0
SPAN_S = 30 * 86400


def _tokens(i: int) -> tuple[int, int, int]:
    """(input, output, cache_read) of event ``i``: the same formulas as the SQL below."""
    return 300 + (i * 7919) % 4000, 20 + (i * 104729) % 700, (200 + (i * 13) % 3000) if i % 3 == 0 else 0


def exact_total(n: int) -> Decimal:
    """Σ cost of the generated events, in Python from the formulas (independent of every SQL path)."""
    total = 0
    for i in range(n):
        inp, out, cr = _tokens(i)
        _, pi, po, pc = MODELS[i % 5]
        total += inp * pi + out * po + cr * pc
    return Decimal(total).scaleb(-12)


def _case(col: int) -> str:
    return "CASE i % 5 " + " ".join(f"WHEN {k} THEN {m[col]}" for k, m in enumerate(MODELS)) + " END"


def _model() -> str:
    return "CASE i % 5 " + " ".join(f"WHEN {k} THEN '{m[0]}'" for k, m in enumerate(MODELS)) + " END"


_INNER = (
    "SELECT i, 300 + (i * 7919) % 4000 AS inp, 20 + (i * 104729) % 700 AS outp, "
    "CASE WHEN i % 3 = 0 THEN 200 + (i * 13) % 3000 ELSE 0 END AS cr, "
    f"{_case(1)} AS pi, {_case(2)} AS po, {_case(3)} AS pc, {_model()} AS model FROM g"
)


def generate_sqlite(path: Path, n: int) -> float:
    """Generate; the seconds the rollup tables took to build (included in the generation's time)."""
    import sqlite3

    from agentcost_core import Ledger
    from agentcost_core.ledger.sqlite import ROLLUPS

    Ledger(f"sqlite:///{path}").close()  # the current layout, indexes included
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    # a bulk load: the events' indexes are dropped, then built once after it (the same indexes)
    indexes = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' "
                           "AND sql IS NOT NULL").fetchall()  # fmt: skip
    for name, _ in indexes:
        conn.execute(f"DROP INDEX {name}")
    conn.execute(
        "INSERT INTO events (id, ts, kind, model, provider, input, cache_read, cache_write_5m, cache_write_1h, "
        "output, reasoning, cost, priced, estimated, cache_hit, user_id, session_id, feature, agent_id, step, "
        "framework, cost_nanos, cost_attos, cost_exp) "
        "WITH RECURSIVE g(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM g WHERE i + 1 < ?) "
        f"SELECT printf('e%d', i), ? + i * ?, 'llm', model, 'x', inp, cr, 0, 0, outp, 0, "
        "printf('%d.%012d', p / 1000000000000, p % 1000000000000), 1, 0, 0, printf('u%d', i % 1000), "
        f"printf('s%d', i / 10), printf('feature-%d', (i / 10) % {FEATURES}), printf('agent-%d', (i / 10) % 20), "
        "printf('step-%d', i % 8), 'langchain', p / 1000, (p % 1000) * 1000000, -12 "
        f"FROM (SELECT *, inp * pi + outp * po + cr * pc AS p FROM ({_INNER}))",
        (n, T0, SPAN_S / n),
    )
    for _, sql in indexes:
        conn.execute(sql)
    t = time.perf_counter()
    for sql in ROLLUPS.build_sql():  # a bulk insert by hand: summed once, as the ledger's writer would
        conn.execute(sql)
    conn.execute("COMMIT")
    build = time.perf_counter() - t
    conn.execute("ANALYZE")
    conn.close()
    return build


def generate_postgres(url: str, n: int) -> float:
    import psycopg

    from agentcost_core import Ledger
    from agentcost_core.ledger.postgres import POSTGRES
    from agentcost_core.ledger.rollup_tables import RollupTables

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS agentcost_events, agentcost_events_prompts")
        conn.execute("DROP TABLE IF EXISTS agentcost_events_hourly, agentcost_events_sessions")
        conn.execute("DELETE FROM agentcost_meta WHERE name = 'agentcost_events'") if _has_meta(conn) else None
    Ledger(url).close()
    with psycopg.connect(url, autocommit=True) as conn:  # a bulk insert: summed once below instead
        conn.execute("ALTER TABLE agentcost_events DISABLE TRIGGER agentcost_events_rollups")
        indexes = conn.execute(  # and the events' indexes built once after it (the same indexes)
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "AND tablename = 'agentcost_events' AND indexname <> 'agentcost_events_pkey'"
        ).fetchall()
        for name, _ in indexes:
            conn.execute(f"DROP INDEX {name}")
    pg_inner = _INNER.replace("FROM g", "FROM generate_series(0::bigint, %s - 1) AS g(i)")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            _pg_percent(
                "INSERT INTO agentcost_events (id, ts, kind, model, provider, input, cache_read, cache_write_5m, "
                "cache_write_1h, output, reasoning, cost, priced, estimated, cache_hit, user_id, session_id, feature, "
                "agent_id, step, framework) "
                "SELECT 'e' || i, %s + i * %s, 'llm', model, 'x', inp, cr, 0, 0, outp, 0, "
                "round(p::numeric / 1000000000000, 12), true, false, false, 'u' || (i % 1000), 's' || (i / 10), "
                f"'feature-' || ((i / 10) % {FEATURES}), 'agent-' || ((i / 10) % 20), 'step-' || (i % 8), 'langchain' "
                f"FROM (SELECT *, inp::bigint * pi + outp::bigint * po + cr::bigint * pc AS p FROM ({pg_inner}) x) y"
            ),
            (T0, SPAN_S / n, n),
        )
        for _, sql in indexes:
            conn.execute(sql)
        t = time.perf_counter()
        with conn.transaction():
            for sql in RollupTables(POSTGRES, "agentcost_events").build_sql():
                conn.execute(sql)
            conn.execute("ALTER TABLE agentcost_events ENABLE TRIGGER agentcost_events_rollups")
        build = time.perf_counter() - t
        conn.execute("VACUUM ANALYZE agentcost_events")
        conn.execute("VACUUM ANALYZE agentcost_events_sessions")
        conn.execute("VACUUM ANALYZE agentcost_events_hourly")
    return build


def _pg_percent(sql: str) -> str:
    """The modulo operator written for a psycopg query with parameters."""
    return sql.replace(" % ", " %% ")


def _has_meta(conn) -> bool:  # type: ignore[no-untyped-def]
    return conn.execute("SELECT to_regclass('agentcost_meta') IS NOT NULL").fetchone()[0]


_CHILD_REPORT = """
import resource, sys, time
from agentcost_core.cli import main
t, c = time.perf_counter(), time.process_time()
rc = main(sys.argv[1:])
s, c = time.perf_counter() - t, time.process_time() - c
print(f"@@ {s} {c} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss} {rc}", file=sys.stderr)
"""
_CHILD_BARE = """
import resource, sys, time
url, sql = sys.argv[1], sys.argv[2]
t, c = time.perf_counter(), time.process_time()
if url.startswith("sqlite"):
    import sqlite3
    rows = sqlite3.connect(url.split("///", 1)[1]).execute(sql).fetchall()
else:
    import psycopg
    rows = psycopg.connect(url).execute(sql).fetchall()
s, c = time.perf_counter() - t, time.process_time() - c
print(rows[0], file=sys.stdout)
print(f"@@ {s} {c} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss} 0", file=sys.stderr)
"""
_CHILD_PYTHON = """
import resource, sys, time
from agentcost_core import Ledger
from agentcost_core.rollup import rollup
t, c = time.perf_counter(), time.process_time()
with Ledger(sys.argv[1]) as lg:
    r = rollup(lg.iter_events(), by="feature")
s, c = time.perf_counter() - t, time.process_time() - c
print(r.total.cost)
print(f"@@ {s} {c} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss} 0", file=sys.stderr)
"""


def _child(code: str, *args: str) -> tuple[float, float, float, str]:
    """(wall seconds and CPU seconds of the work inside the child, its peak RSS in MB, its stdout) of
    one fresh Python process."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'shared'}:{ROOT}", "COLUMNS": "200"}
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=7200, check=False
    )
    line = [x for x in out.stderr.splitlines() if x.startswith("@@ ")]
    if not line or line[-1].split()[4] != "0":
        raise SystemExit(f"child failed: {out.stderr[-2000:]}")
    _, s, cpu, rss, _ = line[-1].split()
    return float(s), float(cpu), int(rss) / 1024, out.stdout


def measure(url: str, n: int, *, bare_sql: str, rounds: int, python_too: bool) -> dict[str, tuple[float, float, float]]:
    runs = {
        "bare GROUP BY": (_CHILD_BARE, url, bare_sql),
        "report --by feature (table)": (_CHILD_REPORT, "report", "--ledger", url, "--by", "feature"),
        "report --by feature --format json": (_CHILD_REPORT, "report", "--ledger", url, "--format", "json"),
        "report --by model,day --format json": (
            _CHILD_REPORT, "report", "--ledger", url, "--by", "model,day", "--format", "json",
        ),
    }  # fmt: skip
    if python_too:
        runs["Python rollup (before)"] = (_CHILD_PYTHON, url)
    times: dict[str, list[float]] = {k: [] for k in runs}
    cpus: dict[str, list[float]] = {k: [] for k in runs}
    rss: dict[str, float] = {}
    outputs: dict[str, str] = {}
    for _ in range(rounds):
        for name, (code, *args) in runs.items():
            if name.startswith("Python") and times[name]:
                continue  # once is enough for the slow one
            s, cpu, mb, out = _child(code, *args)
            times[name].append(s)
            cpus[name].append(cpu)
            rss[name] = max(rss.get(name, 0.0), mb)
            outputs[name] = out
    want = exact_total(n)
    got = Decimal(json.loads(outputs["report --by feature --format json"])["total"]["cost"])
    assert got == want, f"report total {got} != exact sum {want}"
    if python_too:
        assert Decimal(outputs["Python rollup (before)"].strip()) == want
    return {k: (_bench.median(v), _bench.median(cpus[k]), rss[k]) for k, v in times.items()}


def _print(title: str, results: dict[str, tuple[float, float, float]]) -> None:
    """Wall and CPU seconds with their ratios to the bare GROUP BY (CPU: this process's own, robust
    to other load on the machine; PostgreSQL's work runs in the server, so its CPU ratio says little)."""
    bare, bare_cpu = results["bare GROUP BY"][:2]
    print(f"\n{title}")
    print(f"  {'':40s} {'wall s':>8s} {'x bare':>8s} {'CPU s':>8s} {'x bare':>8s} {'peak RSS':>10s}")
    for name, (s, cpu, mb) in results.items():
        print(f"  {name:40s} {s:8.2f} {s / bare:7.2f}x {cpu:8.2f} {cpu / bare_cpu:7.2f}x {mb:8.0f} MB")


def main() -> int:
    quick = _bench.quick()
    sizes = [int(sys.argv[sys.argv.index("--n") + 1])] if "--n" in sys.argv else [20_000 if quick else 300_000]
    if os.environ.get("AGENTCOST_BENCH_10M") == "1":
        sizes = [100_000, 1_000_000, 10_000_000]
    rounds = 1 if quick or max(sizes) > 300_000 else 3
    print(_bench.machine())
    with tempfile.TemporaryDirectory(prefix="agentcost-bench-report-") as tmp:
        for n in sizes:
            path = Path(tmp) / f"ledger-{n}.db"
            t = time.perf_counter()
            build = generate_sqlite(path, n)
            print(
                f"\n[SQLite] generated {n:,} events in {time.perf_counter() - t:.1f} s ({path.stat().st_size / 1e6:.0f} MB;"
                f" rollup tables built in {build:.1f} s of it)"
            )
            bare = "SELECT feature, COUNT(*), SUM(input), SUM(cache_read), SUM(output), SUM(cost_nanos) FROM events GROUP BY feature"
            res = measure(f"sqlite:///{path}", n, bare_sql=bare, rounds=rounds, python_too=n <= 300_000 and not quick)
            _print(f"SQLite, {n:,} events (medians of {rounds}; totals equal the exact sum)", res)
            path.unlink()
            if "--postgres" in sys.argv or os.environ.get("AGENTCOST_POSTGRES_URL"):
                url = _bench_database()
                t = time.perf_counter()
                build = generate_postgres(url, n)
                print(
                    f"\n[PostgreSQL] generated {n:,} events in {time.perf_counter() - t:.1f} s"
                    f" (rollup tables built in {build:.1f} s of it)"
                )
                bare = "SELECT feature, COUNT(*), SUM(input), SUM(cache_read), SUM(output), SUM(cost) FROM agentcost_events GROUP BY feature"
                res = measure(url, n, bare_sql=bare, rounds=rounds, python_too=n <= 300_000 and not quick)
                _print(f"PostgreSQL, {n:,} events (medians of {rounds}; totals equal the exact sum)", res)
                _drop_schema(url)
    return 0


#: This run's schema in the benchmark database (two runs at once never share a table).
_SCHEMA = f"bench_report_{os.getpid()}"


def _bench_database() -> str:
    """A schema of this run's own (:data:`_SCHEMA`) in a database of its own on the server of
    ``AGENTCOST_POSTGRES_URL`` (``agentcost_bench``, created once); the URL puts it first in the search path."""
    import psycopg

    base = os.environ.get("AGENTCOST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    with psycopg.connect(base, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'agentcost_bench'").fetchone():
            conn.execute("CREATE DATABASE agentcost_bench")
    url = base.rsplit("/", 1)[0] + "/agentcost_bench"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_SCHEMA}")
    return f"{url}?options=-csearch_path%3D{_SCHEMA}"


def _drop_schema(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {_SCHEMA} CASCADE")


if __name__ == "__main__":
    sys.exit(main())
