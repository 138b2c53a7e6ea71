"""Rollup tables the database keeps beside the events (schema version 5), so a report over millions of
events reads thousands of rows: LiteLLM keeps daily spend tables beside its spend log in the same way.

* ``<events>_hourly``: per hour (UTC) × feature × kind × model × service tier × routed top model × prompt
  size class, the sums a report's groups are made of (:func:`.sql_rollup.sql_rollup`'s "fine groups").
* ``<events>_sessions``: per session × feature, and per session over all its features (``whole`` 1), the
  summed cost of its priced calls (per-session percentiles; an index holds them in rank order).

Every insert of events adds to them in the insert's own transaction, so they hold exactly what the
events hold whichever process writes: on PostgreSQL a statement trigger sums each ``COPY`` (whatever
writes it); on SQLite, which has no statement triggers, the writer sums each batch it inserts
(:meth:`RollupTables.batch_sql`; SQLite serializes writers, one transaction at a time). A migration
builds them from the stored events (:meth:`RollupTables.build_sql`); a prune rebuilds the hour and the sessions it
cut into (the backends' ``prune``). Money is summed as the events' columns are (SQLite: integer parts,
see .money_columns; PostgreSQL: ``NUMERIC``), so a sum of sums has the same value and digits.

The ``prompt size class`` (``prompt_over``) is the largest of :data:`LONG_THRESHOLDS` a call's prompt
exceeds (0: none): a price with a long-context tier above one of them is valued from it; a price with
another threshold makes a report read the events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..rollup import CALL_KINDS, NOTICE_KINDS
from .rollup_dialects import Dialect

__all__ = ["FAST_FIELDS", "LONG_THRESHOLDS", "RollupTables"]

#: Fields a report may group and filter by and still read the hourly table.
FAST_FIELDS = frozenset({"feature", "kind", "model", "service_tier", "day", "hour", "month"})
#: Prompt sizes (tokens) above which the catalog's long-context prices start (see the module text).
LONG_THRESHOLDS = (128_000, 200_000, 256_000, 272_000, 1_000_000)
CALLS = "kind IN (" + ", ".join(f"'{k}'" for k in sorted(CALL_KINDS)) + ")"
_NOTICES = "kind IN (" + ", ".join(f"'{k}'" for k in NOTICE_KINDS) + ")"
_PROMPT = "({r}input + {r}cache_read + {r}cache_write_5m + {r}cache_write_1h)"
_USAGE = ("input", "cache_read", "cache_write_5m", "cache_write_1h", "output", "reasoning")
#: SQLite's hour start: whole seconds as its date functions round them (to the millisecond), floored to
#: the hour (the shift keeps integer division a floor for times before 1970).
_SQLITE_HOUR = "(CAST(strftime('%s', {r}ts, 'unixepoch') AS INTEGER) + 360000000000) / 3600 * 3600 - 360000000000"
#: PostgreSQL's (NULL outside the timestamps it can hold, where ``to_timestamp`` would refuse the insert).
_PG_HOUR = (
    "CASE WHEN {r}ts >= -210866803200 AND {r}ts < 9224318016000 THEN "
    "extract(epoch FROM date_trunc('hour', to_timestamp({r}ts) AT TIME ZONE 'UTC'))::double precision END"
)


@dataclass(frozen=True)
class _Column:
    name: str
    row: str  # the value one event gives (``{r}``: a prefix naming the row's table, or none)
    merge: str = "sum"  # how two values combine: sum, min, max, key; nanos / attos: a sum with carry

    def value(self, r: str) -> str:
        return self.row.format(r=r)


def _hourly_columns(d: Dialect) -> list[_Column]:
    sqlite = d.name == "sqlite"
    flag = (lambda c: "{r}" + c) if sqlite else (lambda c: "{r}" + c + "::int")
    unpriced = "{r}cost IS NULL AND " + flag("cache_hit") + " = 0 AND COALESCE({r}error, '') = ''"
    over = " ".join(f"WHEN {_PROMPT} > {t} THEN {t}" for t in sorted(LONG_THRESHOLDS, reverse=True))
    saved = flag("cache_hit") + " = 1"
    if sqlite:
        saved += " AND ({r}saved_nanos <> 0 OR {r}saved_attos <> 0)"
        money = [
            _Column("saved_nanos", f"CASE WHEN {saved} THEN {{r}}saved_nanos END"),
            _Column("saved_attos", f"CASE WHEN {saved} THEN {{r}}saved_attos END"),
            _Column("saved_exp", f"CASE WHEN {saved} THEN {{r}}saved_exp END", "min"),
        ]
        cost = [
            _Column("cost_nanos", "CASE WHEN {r}cost IS NOT NULL THEN {r}cost_nanos END"),
            _Column("cost_attos", "CASE WHEN {r}cost IS NOT NULL THEN {r}cost_attos END"),
            _Column("cost_exp", "CASE WHEN {r}cost IS NOT NULL THEN {r}cost_exp END", "min"),
        ]
        remainders = "CASE WHEN {r}cost_rem IS NOT NULL OR {r}saved_rem IS NOT NULL THEN 1 ELSE 0 END"
    else:
        # (``::numeric``: a table made by hand with text money still sums)
        money = [_Column("saved", f"CASE WHEN {saved} AND {{r}}saved::numeric <> 0 THEN {{r}}saved::numeric END")]
        cost = [_Column("cost", "CASE WHEN {r}cost IS NOT NULL THEN {r}cost::numeric END")]
        remainders = "0"
    return [
        _Column("ts", _SQLITE_HOUR if sqlite else _PG_HOUR, "key"),
        *(_Column(c, "{r}" + c, "key") for c in ("feature", "kind", "model", "service_tier")),
        _Column(
            "routed_top",
            "CASE WHEN {r}tier IS NOT NULL AND {r}kind = 'llm' AND {r}cost IS NOT NULL "
            "AND COALESCE({r}top_model, '') <> '' THEN {r}top_model END",
            "key",
        ),
        _Column("prompt_over", f"CASE {over} ELSE 0 END", "key"),
        _Column("n", "1"),
        _Column("first_ts", "{r}ts", "min"),
        _Column("first_seq", "{r}seq", "min"),
        _Column("last_ts", "{r}ts", "max"),
        *(_Column(u, "{r}" + u) for u in _USAGE),
        _Column("cache_hits", flag("cache_hit")),
        *money,
        _Column("estimated", flag("estimated")),
        _Column("errors", "CASE WHEN COALESCE({r}error, '') <> '' THEN 1 ELSE 0 END"),
        _Column("unpriced", f"CASE WHEN {unpriced} THEN 1 ELSE 0 END"),
        _Column("unpriced_first", f"CASE WHEN {unpriced} THEN {{r}}ts END", "min"),
        _Column("priced", "CASE WHEN {r}cost IS NOT NULL THEN 1 ELSE 0 END"),
        *cost,
        _Column("priced_cache_read", "CASE WHEN {r}cost IS NOT NULL THEN {r}cache_read ELSE 0 END"),
        _Column("remainders", remainders),
    ]


def _session_columns(d: Dialect, whole: bool) -> list[_Column]:
    """A session's row per feature (``whole`` 0), or over all its features (``whole`` 1, ``feature`` NULL).
    SQLite's sums carry the atto-dollars above 10⁹ into the nano-dollars, so (``cost_nanos``,
    ``cost_attos``) is the sum's numeric order and an index holds the sessions in rank order."""
    money = (
        [_Column("cost_nanos", "COALESCE({r}cost_nanos, 0)", "nanos"),
         _Column("cost_attos", "COALESCE({r}cost_attos, 0)", "attos"),
         _Column("cost_exp", "{r}cost_exp", "min")]
        if d.name == "sqlite"
        else [_Column("cost", "{r}cost::numeric")]
    )  # fmt: skip
    # ``ts`` and ``seq`` are the session's first, which break ties between equal sums
    return [
        _Column("session_id", "{r}session_id", "key"),
        _Column("feature", "CAST(NULL AS TEXT)" if whole else "{r}feature", "key"),
        _Column("whole", "1" if whole else "0", "key"),
        _Column("n", "1"),
        *money,
        _Column("ts", "{r}ts", "min"),
        _Column("seq", "{r}seq", "min"),
    ]


#: Which events the sessions table sums: priced calls with a session.
_SESSION_ROWS = "{r}session_id IS NOT NULL AND {r}cost IS NOT NULL AND {r}" + CALLS


@dataclass(frozen=True)
class RollupTables:
    """The SQL of the rollup tables of the events table ``table`` in dialect ``d``."""

    d: Dialect
    table: str

    @property
    def hourly(self) -> str:
        return f"{self.table}_hourly"

    @property
    def sessions(self) -> str:
        return f"{self.table}_sessions"

    def _specs(self) -> list[tuple[str, list[_Column], str]]:
        return [
            (self.hourly, _hourly_columns(self.d), ""),
            (self.sessions, _session_columns(self.d, whole=False), _SESSION_ROWS),
            (self.sessions, _session_columns(self.d, whole=True), _SESSION_ROWS),
        ]

    def create_sql(self) -> list[str]:
        """The tables (no rows); the indexes a feature's per-call percentiles walk (and, on PostgreSQL,
        all calls' percentiles: SQLite has that one since version 4), and the guard notices' index."""
        out = []
        for name, cols, _ in self._specs():
            typed = ", ".join(f"{c.name} {self._type(c)}" for c in cols)
            out.append(f"CREATE TABLE IF NOT EXISTS {name} (k TEXT PRIMARY KEY, {typed})")
        order = "cost_nanos, cost_attos, ts" if self.d.name == "sqlite" else "cost, ts, seq"
        not_null = "cost_nanos" if self.d.name == "sqlite" else "cost"
        out.append(
            f"CREATE INDEX IF NOT EXISTS {self.table}_feature_cost ON {self.table} (feature, {order}) "
            f"WHERE {not_null} IS NOT NULL AND {CALLS}"
        )
        money = "cost_nanos, cost_attos" if self.d.name == "sqlite" else "cost"
        out.append(  # sessions in rank order, per feature and over all
            f"CREATE INDEX IF NOT EXISTS {self.sessions}_rank ON {self.sessions} (whole, feature, {money}, ts, seq)"
        )
        if self.d.name != "sqlite":
            out.append(
                f"CREATE INDEX IF NOT EXISTS {self.table}_call_cost ON {self.table} ({order}) "
                f"WHERE {not_null} IS NOT NULL AND {CALLS}"
            )
        out.append(f"CREATE INDEX IF NOT EXISTS {self.table}_notices ON {self.table} (kind) WHERE {_NOTICES}")
        return out

    def _type(self, c: _Column) -> str:
        if c.name in ("ts", "first_ts", "last_ts", "unpriced_first"):
            return "REAL" if self.d.name == "sqlite" else "DOUBLE PRECISION"
        if c.name in ("cost", "saved"):
            return "NUMERIC"
        if c.merge == "key" and c.name not in ("prompt_over", "whole"):
            return "TEXT"
        return "INTEGER" if self.d.name == "sqlite" else "BIGINT"

    def _merge(self, c: _Column, old: str, new: str) -> str:
        if c.merge in ("nanos", "attos"):  # (every SET reads the row as it was)
            a_old, a_new = (x.replace("_nanos", "_attos") for x in (old, new))
            if c.merge == "attos":
                return f"({a_old} + {a_new}) % 1000000000"
            return f"{old} + {new} + ({a_old} + {a_new}) / 1000000000"
        if c.merge == "sum":
            return f"CASE WHEN {old} IS NULL THEN {new} WHEN {new} IS NULL THEN {old} ELSE {old} + {new} END"
        if self.d.name == "sqlite":  # SQLite's two-argument min / max are NULL when either is
            return f"COALESCE({c.merge}({old}, {new}), {old}, {new})"
        return f"{'LEAST' if c.merge == 'min' else 'GREATEST'}({old}, {new})"

    def _upsert(self, name: str, cols: list[_Column], select: str) -> str:
        sets = ", ".join(
            f"{c.name} = {self._merge(c, f'{name}.{c.name}', f'excluded.{c.name}')}" for c in cols if c.merge != "key"
        )
        names = ", ".join(c.name for c in cols)
        return f"INSERT INTO {name} (k, {names}) {select} ON CONFLICT (k) DO UPDATE SET {sets}"

    def _aggregate_select(self, cols: list[_Column], source: str, where: str) -> str:
        """``SELECT k, <column sums>`` of the rows of ``source`` (prefix-free) that ``where`` keeps (each
        key's text is made once per group, not per row)."""
        agg = {"key": "{}", "sum": "SUM({})", "min": "MIN({})", "max": "MAX({})", "attos": "SUM({}) % 1000000000"}
        attos = next((c.value("") for c in cols if c.merge == "attos"), "")
        agg["nanos"] = f"SUM({{}}) + SUM({attos}) / 1000000000"
        outs = ", ".join(f"{agg[c.merge].format(c.value(''))} AS {c.name}" for c in cols)
        group = ", ".join(str(i + 1) for i, c in enumerate(cols) if c.merge == "key")
        q = "quote" if self.d.name == "sqlite" else "quote_nullable"
        key = " || ',' || ".join(f"{q}({c.name})" for c in cols if c.merge == "key")
        names = ", ".join(c.name for c in cols)
        # ORDER BY k: concurrent PostgreSQL writers lock the rows they add to in one order (no deadlock);
        # WHERE: SQLite reads ``ON CONFLICT`` right after a FROM as a join's ON
        return (
            f"SELECT {key}, {names} FROM (SELECT {outs} FROM {source}{where} GROUP BY {group}) g WHERE 1 = 1 ORDER BY 1"
        )

    def build_sql(self, where: str = "", session_where: str | None = None) -> list[str]:
        """Statements adding the events ``where`` selects (``" WHERE …"``, over ``table``) to both tables
        (the sessions table takes ``session_where`` instead when given)."""
        out = []
        for name, cols, rows in self._specs():
            w = where if name == self.hourly or session_where is None else session_where
            cond = rows.format(r="")
            if cond:
                w = f"{w} AND {cond}" if w else f" WHERE {cond}"
            out.append(self._upsert(name, cols, self._aggregate_select(cols, self.table, w)))
        return out

    def batch_sql(self) -> list[str]:
        """SQLite: statements adding the events with ``seq`` above their one argument (the batch just
        inserted) to both tables, run by the writer in the batch's transaction. SQLite has no statement
        triggers, and a row trigger (two upserts per event) made a write 1.5-2x slower."""
        return self.build_sql(f" WHERE seq > {self.d.param}")

    def trigger_sql(self) -> list[str]:
        """PostgreSQL: the statement trigger (and its function) that adds every inserted event to both tables."""
        body = "; ".join(self.build_sql_from("new_events"))
        fn = f"{self.table}_rollups"
        return [
            (
                f"CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {body}; "
                "RETURN NULL; END $$"
            ),
            f"DROP TRIGGER IF EXISTS {fn} ON {self.table}",
            (
                f"CREATE TRIGGER {fn} AFTER INSERT ON {self.table} REFERENCING NEW TABLE AS new_events "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {fn}()"
            ),
        ]

    def build_sql_from(self, source: str) -> list[str]:
        out = []
        for name, cols, rows in self._specs():
            cond = rows.format(r="")
            out.append(self._upsert(name, cols, self._aggregate_select(cols, source, f" WHERE {cond}" if cond else "")))
        return out

    def clear_sql(self) -> list[str]:
        return [f"DELETE FROM {self.hourly}", f"DELETE FROM {self.sessions}"]

    def prune_steps(self, before_ts: float, hour: float | None) -> list[tuple[str, list[Any]]]:
        """Statements (with their arguments) keeping both tables exact when the events before
        ``before_ts`` (which falls in the hour starting at ``hour``) are deleted, run just before
        that delete: the sessions holding such events and the hours up to ``hour`` are summed again
        from the events that stay. ``hour`` is None when ``before_ts`` has no hour (beyond the
        database's date range, or infinite): the hourly table is then summed again whole."""
        p, t = self.d.param, self.table
        cut = f"session_id IN (SELECT session_id FROM {t} WHERE ts < {p})"
        h_sql, *s_sqls = self.build_sql(
            f" WHERE ts >= {p} AND ts < {p} AND {self.hour_of()} = {p}", f" WHERE ts >= {p} AND {cut}"
        )
        sessions = [(f"DELETE FROM {self.sessions} WHERE {cut}", [before_ts]), *((sql, [before_ts, before_ts]) for sql in s_sqls)]
        if hour is None:
            all_hours = self.build_sql(f" WHERE ts >= {p}")[0]
            return [*sessions, (f"DELETE FROM {self.hourly}", []), (all_hours, [before_ts])]
        return [
            *sessions,
            (f"DELETE FROM {self.hourly} WHERE ts <= {p}", [hour]),
            (h_sql, [before_ts, hour + 7200, hour]),
        ]

    def hour_of(self, r: str = "") -> str:
        """The hour-start expression of the hourly table's ``ts`` over a row (prefix ``r``)."""
        return (_SQLITE_HOUR if self.d.name == "sqlite" else _PG_HOUR).format(r=r)

    def fine_sql(self, keys: list[str], where: str) -> str:
        """The fine groups of :func:`.sql_rollup._fine_sql`, same columns, from the hourly table."""
        sqlite = self.d.name == "sqlite"
        money = (
            (lambda m: [f"SUM({m}_nanos)", f"SUM({m}_attos)", f"MIN({m}_exp)"]) if sqlite else (lambda m: [f"SUM({m})"])
        )
        cols = [
            *keys, "kind", "model", "service_tier", "routed_top",
            "SUM(n)", "MIN(first_ts)", "MIN(first_seq)", "MAX(last_ts)",
            *(f"SUM({u})" for u in _USAGE),
            "SUM(cache_hits)", *money("saved"), "SUM(estimated)", "SUM(errors)",
            "SUM(unpriced)", "MIN(unpriced_first)", "SUM(priced)", *money("cost"),
            "SUM(priced_cache_read)", "SUM(remainders)",
        ]  # fmt: skip
        group = ", ".join(str(i + 1) for i in range(len(keys) + 4))
        return f"SELECT {', '.join(cols)} FROM {self.hourly}{where} GROUP BY {group}"
