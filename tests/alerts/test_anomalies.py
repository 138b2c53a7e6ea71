"""SpendAnomalies: each rule fires exactly once on a synthetic ledger built to trigger it (cooldown
included) and never on a steady one; baselines come from the ledger and survive a restart; the
recorder feeds every recorded call to the detector. Time is an injected clock: no sleeps."""

from __future__ import annotations

from decimal import Decimal

import pytest

from agentcost_core import ConfigurationError, CostEvent, CostRecorder, Ledger, Usage
from agentcost_core.alerts import Alert, SpendAnomalies

T0 = 1_800_000_000.0  # 08:00 UTC, on a minute boundary
MINUTE = 60.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def call(
    cost: str, *, ts: float, agent: str = "support-bot", feature: str = "refunds", user: str | None = None
) -> CostEvent:
    return CostEvent(
        "gpt-4o-mini", cost=Decimal(cost), priced=True, agent_id=agent, feature=feature, user_id=user, ts=ts
    )


def steady_ledger(*, until: float = T0, cost: str = "0.01", hours: int = 24, **who: str) -> Ledger:
    """One $0.01 call a minute for the ``hours`` before ``until``."""
    ledger = Ledger("memory://", sync=True)
    ledger.record_many([call(cost, ts=until - MINUTE * i - 30, **who) for i in range(hours * 60)])
    return ledger


def detector(ledger: Ledger, clock: Clock, **options) -> tuple[SpendAnomalies, list[Alert]]:  # type: ignore[no-untyped-def]
    got: list[Alert] = []
    return SpendAnomalies(alerts=[got.append], ledger=ledger, clock=clock, **options), got


def live(det: SpendAnomalies, clock: Clock, cost: str, **who: str) -> None:
    det.observe(call(cost, ts=clock.now, **who))


def test_a_steady_ledger_never_fires_any_rule() -> None:
    clock = Clock()
    det, got = detector(steady_ledger(user="u-1"), clock, user_daily_usd="100")
    for _ in range(180):  # three more hours of the same traffic
        live(det, clock, "0.01", user="u-1")
        clock.now += MINUTE
    assert got == []


def test_spike_one_call_at_10x_the_average_fires_once_per_cooldown() -> None:
    clock = Clock()
    det, got = detector(steady_ledger(), clock)
    live(det, clock, "0.12")  # 12x the $0.01 average
    clock.now += MINUTE
    live(det, clock, "0.12")  # within the 15-minute cooldown: silent
    assert [a.kind for a in got] == ["anomaly.spike"]
    [spike] = got
    assert spike.value == Decimal("0.12") and spike.baseline == Decimal("0.01")
    assert spike.attribution == {"agent_id": "support-bot", "feature": "refunds"} and spike.severity == "error"
    assert "12.0×" in spike.message
    for _ in range(20):  # the cooldown passes with ordinary calls
        clock.now += MINUTE
        live(det, clock, "0.01")
    live(det, clock, "0.12")
    assert [a.kind for a in got] == ["anomaly.spike", "anomaly.spike"]


def test_spike_needs_a_baseline_of_the_same_agent_and_feature() -> None:
    clock = Clock()
    det, got = detector(steady_ledger(), clock)
    live(det, clock, "0.12", feature="search")  # no history for (support-bot, search)
    assert got == []


def test_burst_the_last_15_minutes_average_at_3x_the_baseline_over_10_calls() -> None:
    clock = Clock()
    det, got = detector(steady_ledger(until=T0 - 15 * MINUTE), clock)  # a quiet quarter-hour, then:
    for _ in range(9):
        live(det, clock, "0.035")  # 3.5x the baseline average, too small for a spike; one every 90 s
        clock.now += 1.5 * MINUTE
    assert got == []  # nine calls: not enough for the rule
    for _ in range(4):
        live(det, clock, "0.035")
        clock.now += 1.5 * MINUTE
    assert [a.kind for a in got] == ["anomaly.burst"]  # the tenth call fires it; the next ones are in cooldown
    assert got[0].value == Decimal("0.035") and got[0].baseline == Decimal("0.01")


def test_rate_spend_at_3x_the_rolling_hourly_average() -> None:
    clock = Clock()
    det, got = detector(steady_ledger(until=T0 - 15 * MINUTE), clock)
    for _ in range(15):  # four ordinary calls a minute instead of one: each call is normal, the rate is not
        for _ in range(4):
            live(det, clock, "0.01")
        clock.now += MINUTE
    assert [a.kind for a in got] == ["anomaly.rate"]
    rate = got[0]
    assert rate.value >= 3 * rate.baseline and rate.baseline == pytest.approx(Decimal("0.6"), rel=Decimal("0.02"))


def test_user_at_90_percent_of_the_daily_budget_counts_today_only() -> None:
    clock = Clock()
    ledger = Ledger("memory://", sync=True)
    today = [call("0.05", ts=T0 - 20 * MINUTE * (i + 1), user="u-7", agent="a2") for i in range(16)]  # $0.80
    yesterday = call("0.50", ts=T0 - 9 * 3600, user="u-7", agent="a2")  # 23:00 UTC the day before
    ledger.record_many([*today, yesterday])
    det, got = detector(ledger, clock, user_daily_usd="1.00", rate_factor=100)  # the user rule alone
    live(det, clock, "0.05", user="u-7", agent="a2")  # $0.85 today: 85%
    assert got == []
    live(det, clock, "0.05", user="u-7", agent="a2")  # $0.90: 90%
    live(det, clock, "0.05", user="u-7", agent="a2")  # $0.95: within the cooldown
    assert [a.kind for a in got] == ["anomaly.user_budget"]
    assert got[0].value == Decimal("0.90") and got[0].baseline == Decimal("1.00")
    assert got[0].attribution["user_id"] == "u-7"


def test_baselines_survive_a_restart_through_the_ledger(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path}/ledger.db"
    with Ledger(url) as first_process:
        first_process.record_many([call("0.01", ts=T0 - MINUTE * i - 30) for i in range(120)])
    with Ledger(url) as after_restart:
        det, got = detector(after_restart, Clock())
        live(det, Clock(), "0.15")
        assert [a.kind for a in got] == ["anomaly.spike"]
        after_restart.flush()
        assert [e.kind for e in after_restart.events(kind="anomaly.spike")] == ["anomaly.spike"]


def test_the_recorder_feeds_every_recorded_call_and_the_anomaly_lands_in_the_ledger() -> None:
    got: list[Alert] = []
    rec = CostRecorder("memory://", anomalies=SpendAnomalies(alerts=got.append), agent_id="a", feature="f")
    for _ in range(12):
        rec.record("gpt-4o-mini", Usage(input=100, output=10))
    assert got == []
    rec.record("gpt-4o-mini", Usage(input=100_000, output=10_000))  # ~1000x the calls before it
    assert [a.kind for a in got] == ["anomaly.spike"]
    assert [e.kind for e in rec.ledger.events(kind="anomaly.spike")] == ["anomaly.spike"]


def test_a_failing_sink_never_breaks_the_call() -> None:
    def broken(alert: Alert) -> None:
        raise RuntimeError("pager down")

    clock = Clock()
    det = SpendAnomalies(alerts=[broken], ledger=steady_ledger(), clock=clock)
    rec = CostRecorder("memory://", anomalies=det)
    live(det, clock, "5.00")  # the spike is detected; the sink raises; nothing escapes
    assert rec.anomalies is det


@pytest.mark.parametrize(
    "options",
    [{"spike_factor": 1}, {"burst_min_requests": 0}, {"user_daily_usd": 1.5}, {"cooldown": 0},
     {"trip": "yes"}, {"trip_on": ["everything"]}, {"trip_by": "user"}, {"alerts": "https://hooks.example"}],
)  # fmt: skip
def test_bad_configuration_fails_at_construction(options) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigurationError):
        SpendAnomalies(**options)
