"""The dashboard's filters, markers and time chart, in headless Chromium over a planted ledger.

Every number the page shows under a filter is checked against an exact ``Decimal`` sum of the ledger's
events (and against ``agentcost report --where`` for the same filter).
"""

from __future__ import annotations

import json
from collections import defaultdict
from decimal import Decimal
from typing import Any

from conftest import T0, Planted, screenshot
from test_dashboard_out import drill_total_cost, open_offline, text, write_page

from agentcost_core.cli import main
from agentcost_core.report import money


def report_total(planted: Planted, capsys: Any, *where: str) -> dict[str, Any]:
    args = ["report", "--ledger", planted.url, "--format", "json"]
    for w in where:
        args += ["--where", w]
    capsys.readouterr()
    assert main(args) == 0
    return json.loads(capsys.readouterr().out)["total"]


def dollars(shown: str) -> Decimal:
    return Decimal(shown.replace("$", "").replace(",", ""))


def test_filters_change_every_total(page: Any, planted: Planted, tmp_path: Any, capsys: Any) -> None:
    open_offline(page, write_page(planted, tmp_path))
    everything = text(page, "#total-cost")
    assert everything == money(planted.spend())

    page.select_option("#f-feature", "search")
    search = report_total(planted, capsys, "feature=search")
    assert text(page, "#total-cost") == money(planted.spend(feature="search")) == money(Decimal(search["cost"]))
    assert text(page, "#total-calls") == str(planted.count(feature="search")) == str(search["calls"])
    assert page.locator("#drill tr.row[data-level='feature']").count() == 1

    page.select_option("#f-user_id", "carol")
    assert text(page, "#total-cost") == money(planted.spend(feature="search", user_id="carol"))
    assert text(page, "#total-sessions") == "2"

    page.click("#f-reset")
    assert text(page, "#total-cost") == everything
    page.select_option("#f-model", "gpt-4o")
    by_model = report_total(planted, capsys, "model=gpt-4o")
    assert text(page, "#total-cost") == money(planted.spend(model="gpt-4o")) == money(Decimal(by_model["cost"]))
    assert text(page, "#total-calls") == str(planted.count(model="gpt-4o")) == "3"
    assert text(page, "#total-unpriced") == "0"
    page.select_option("#f-model", "mystery-model-x")
    assert (text(page, "#total-cost"), text(page, "#total-unpriced")) == ("$0.00", "1")

    page.click("#f-reset")
    page.fill("#f-since", "2026-11-30T01:00")
    page.fill("#f-until", "2026-11-30T02:00")
    page.locator("#f-until").dispatch_event("change")
    since, until = T0 + 3600, T0 + 7200
    assert page.locator("#f-window").input_value() == "custom"
    assert text(page, "#total-cost") == money(planted.spend(since=since, until=until))
    assert text(page, "#total-calls") == str(sum(1 for e in planted.calls if since <= e.ts < until)) == "3"
    assert text(page, "#total-budget-events") == "2" and text(page, "#total-anomalies") == "0"
    assert drill_total_cost(page) == money(planted.spend(since=since, until=until))

    page.select_option("#f-window", "86400")  # the last 24 hours before the page was written: nothing
    assert (text(page, "#total-calls"), text(page, "#total-cost")) == ("0", "$0.00")
    assert page.locator("#chart .empty").count() == 1


def test_unpriced_estimated_budget_events_and_anomalies_are_marked(page: Any, planted: Planted, tmp_path: Any) -> None:
    open_offline(page, write_page(planted, tmp_path))
    support = page.locator("#drill tr.row[data-key='support']")
    assert support.locator(".badge.unpriced").inner_text() == "unpriced 1"
    assert support.locator(".badge.estimated").inner_text() == "estimated 1"
    assert support.locator(".badge.budget").inner_text() == "budget ×2"
    search = page.locator("#drill tr.row[data-key='search']")
    assert search.locator(".badge.anomaly").inner_text() == "anomaly ×1"
    assert search.locator(".badge.unpriced, .badge.budget").count() == 0
    assert page.locator("#chart .marker-budget").count() == 2
    assert page.locator("#chart .marker-anomaly").count() == 1

    budget = page.locator("#budgets tr.budget-row[data-budget='support-daily']")
    assert budget.locator(".level-exceeded").inner_text() == "exceeded"
    assert "$0.0612 / $0.05" in budget.inner_text() and "122%" in budget.inner_text()
    kinds = page.locator("#notices tr.notice-row").evaluate_all("rows => rows.map(r => r.dataset.kind)")
    assert sorted(kinds) == ["anomaly.spike", "budget.exceeded", "budget.warning"]  # no routing decisions

    page.click("#drill tr.row[data-key='support']")
    page.click("#drill tr.row[data-key='writer']")
    page.click("#drill tr.row[data-key='s-2']")
    unpriced = next(e for e in planted.calls if e.model == "mystery-model-x")
    row = page.locator(f"#drill tr.row[data-id='{unpriced.id}']")
    assert row.locator("td.cost").inner_text() == "unpriced"
    row.click()
    assert page.locator("#call-detail dd[data-field='cost']").inner_text() == "unpriced"
    assert "unpriced" in page.locator("#call-detail dd[data-field='flags']").inner_text()
    assert page.locator("#drill tr.row .badge.estimated").count() == 1

    page.select_option("#f-feature", "search")  # the markers follow the filters
    assert page.locator("#chart .marker-budget").count() == 0
    assert page.locator("#chart .marker-anomaly").count() == 1
    screenshot(page, "filtered-search.png")


def _segments(page: Any) -> list[tuple[int, str, Decimal]]:
    rows = page.locator("#chart rect.seg").evaluate_all(
        "rects => rects.map(r => [Number(r.dataset.bin), r.dataset.key, r.dataset.cost])"
    )
    return [(b, k, dollars(c)) for b, k, c in rows]


def test_the_chart_stacks_spend_per_hour_and_per_day(page: Any, planted: Planted, tmp_path: Any) -> None:
    open_offline(page, write_page(planted, tmp_path))
    assert page.locator("#chart-bin").input_value() == "hour"  # 31 hours of calls: hourly by default

    for step in (3600, 86400):
        page.select_option("#chart-bin", "hour" if step == 3600 else "day")
        for stack in ("feature", "model"):
            page.select_option("#chart-stack", stack)
            expected: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
            for e in planted.calls:
                if e.cost:
                    expected[(int(e.ts // step * step), getattr(e, stack))] += e.cost
            shown = {(b, k): c for b, k, c in _segments(page)}
            assert shown == dict(expected), (step, stack)
    assert {k for _, k, _ in _segments(page)} == {"gpt-4o-mini", "gpt-4o", "claude-sonnet-4-5"}
    assert len({b for b, _, _ in _segments(page)}) == 2  # two UTC days
