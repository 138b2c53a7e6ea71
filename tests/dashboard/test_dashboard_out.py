"""``agentcost dashboard --out FILE.html``: one self-contained file, opened offline in headless Chromium.

The totals match the ledger (exact ``Decimal`` sums) and ``agentcost report``; the drill-down goes
total → feature → agent → session → call, and a call shows its tokens by bucket, cost, latency, step,
tier, route reason and trace.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import Planted, screenshot

from agentcost_core.cli import main
from agentcost_core.dashboard import document_of, priced_spend, render_page
from agentcost_core.events import CostEvent
from agentcost_core.report import money
from agentcost_core.usage import Usage


def write_page(planted: Planted, tmp_path: Path, *extra: str) -> Path:
    out = tmp_path / "spend.html"
    assert main(["dashboard", "--ledger", planted.url, "--out", str(out), *extra]) == 0
    return out


def open_offline(page: Any, path: Path) -> None:
    page.context.set_offline(True)  # the file must work with the network off
    page.goto(path.as_uri())
    page.wait_for_selector("body[data-ready='1']")


def text(page: Any, selector: str) -> str:
    return page.locator(selector).inner_text().strip()


def drill_total_cost(page: Any) -> str:
    return text(page, "#drill-total td.cost")


def test_totals_match_the_ledger_and_the_report(page: Any, planted: Planted, tmp_path: Path, capsys: Any) -> None:
    out = write_page(planted, tmp_path)
    printed = capsys.readouterr().out
    assert main(["report", "--ledger", planted.url, "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    exact = planted.spend()
    assert exact == Decimal(report["total"]["cost"]) and exact > 0
    assert money(exact) in printed

    open_offline(page, out)
    assert text(page, "#total-cost") == money(exact)
    assert text(page, "#total-calls") == str(len(planted.calls)) == str(report["total"]["calls"])
    assert text(page, "#total-tokens") == f"{sum(e.usage.total for e in planted.calls):,}"
    assert text(page, "#total-sessions") == str(report["total"]["sessions"])
    assert text(page, "#total-unpriced") == str(report["total"]["unpriced_calls"]) == "1"
    assert text(page, "#total-estimated") == "1"
    html = out.read_text(encoding="utf-8")
    assert "<script src" not in html and "<link" not in html and "@import" not in html


def test_drill_down_from_total_to_one_call(page: Any, planted: Planted, tmp_path: Path) -> None:
    open_offline(page, write_page(planted, tmp_path))
    features = page.locator("#drill tr.row[data-level='feature']")
    by_cost = sorted({e.feature for e in planted.calls}, key=lambda f: -planted.spend(feature=f))
    assert features.evaluate_all("rows => rows.map(r => r.dataset.key)") == by_cost
    assert drill_total_cost(page) == money(planted.spend())

    page.click("#drill tr.row[data-level='feature'][data-key='support']")
    assert drill_total_cost(page) == money(planted.spend(feature="support"))
    agents = page.locator("#drill tr.row[data-level='agent']").evaluate_all("rows => rows.map(r => r.dataset.key)")
    assert sorted(agents) == ["triage", "writer"]
    writer_cost = page.locator("#drill tr.row[data-key='writer'] td.cost").inner_text()
    assert writer_cost == money(planted.spend(feature="support", agent_id="writer"))

    page.click("#drill tr.row[data-level='agent'][data-key='triage']")
    assert drill_total_cost(page) == money(planted.spend(feature="support", agent_id="triage"))
    page.click("#drill tr.row[data-level='session'][data-key='s-1']")
    assert drill_total_cost(page) == money(planted.spend(session_id="s-1"))
    assert page.locator("#drill tr.row[data-level='call']").count() == planted.count(session_id="s-1") == 2
    crumbs = text(page, "#crumbs")
    assert crumbs == "total › feature support › agent triage › session s-1"

    call = next(e for e in planted.calls if e.session_id == "s-1" and e.model == "gpt-4o-mini")
    page.click(f"#drill tr.row[data-id='{call.id}']")
    detail = {
        f: page.locator(f"#call-detail dd[data-field='{f}']").inner_text()
        for f in ("model", "cost", "input", "cache_read", "cache_write_5m", "cache_write_1h", "output", "reasoning",
                  "latency", "step", "tier", "route_reason", "trace_id", "user_id", "session_id")
    }  # fmt: skip
    assert detail == {
        "model": "gpt-4o-mini", "cost": money(call.cost), "input": "1,200", "cache_read": "0", "cache_write_5m": "0",
        "cache_write_1h": "0", "output": "150", "reasoning": "0", "latency": "0.412 s", "step": "classify",
        "tier": "nano", "route_reason": "short question: nano", "trace_id": "trace-1", "user_id": "alice",
        "session_id": "s-1",
    }  # fmt: skip
    cached = next(e for e in planted.calls if e.session_id == "s-1" and e.model == "gpt-4o")
    page.click(f"#drill tr.row[data-id='{cached.id}']")
    assert page.locator("#call-detail dd[data-field='cache_read']").inner_text() == "1,024"
    assert page.locator("#call-detail dd[data-field='cost']").inner_text() == money(cached.cost)
    shot = screenshot(page, "drill-down-call.png")
    assert shot.stat().st_size > 10_000

    page.click("#crumbs a[data-depth='1']")  # back up to the feature's agents
    assert page.locator("#call-detail").is_hidden()
    assert drill_total_cost(page) == money(planted.spend(feature="support"))
    page.click("#crumbs a[data-depth='0']")
    assert drill_total_cost(page) == money(planted.spend())


def test_the_document_keeps_every_cost_exact() -> None:
    costs = [Decimal("0.000000123456789"), Decimal("1.5"), Decimal("0.1"), Decimal("0.2"), None]
    events = [CostEvent("m", Usage(input=1), cost=c, priced=c is not None, feature="f", ts=1.0 + i)
              for i, c in enumerate(costs)]  # fmt: skip
    doc = document_of(events, ledger_url="memory://")
    assert doc["scale"] == 15
    assert doc["calls"]["cost"][:2] == ["123456789", "1500000000000000"] and doc["calls"]["cost"][-1] is None
    assert priced_spend(doc) == Decimal("1.800000123456789")
    assert doc["calls"]["flags"][-1] & doc["flags"]["unpriced"]
    assert not doc["calls"]["flags"][0] & doc["flags"]["unpriced"]


@pytest.mark.parametrize("name", ["</script><img src=x onerror=\"document.title='owned'\">", "a & b <i>"])
def test_names_from_the_ledger_stay_text(page: Any, tmp_path: Path, name: str) -> None:
    event = CostEvent("gpt-4o-mini", Usage(input=10, output=2), cost=Decimal("0.01"), priced=True, feature=name,
                      agent_id=name, session_id="s", ts=1_790_000_000.0)  # fmt: skip
    out = tmp_path / "page.html"
    out.write_text(render_page(document_of([event], ledger_url="memory://")), encoding="utf-8")
    open_offline(page, out)
    row = page.locator("#drill tr.row[data-level='feature']")
    assert row.locator("td").first.inner_text().strip() == name
    assert page.locator("#drill img, #drill i").count() == 0
    assert page.title() != "owned"
    assert text(page, "#total-cost") == "$0.01"
