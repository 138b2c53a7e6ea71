"""``agentcost dashboard --serve``: the page live on 127.0.0.1, read from the ledger on each request."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import T0, Planted
from test_dashboard_out import text

from agentcost_core.cli import main
from agentcost_core.dashboard import DashboardServer, priced_spend
from agentcost_core.events import CostEvent
from agentcost_core.ledger import Ledger
from agentcost_core.report import money
from agentcost_core.usage import Usage


def test_the_served_page_reads_the_ledger_on_each_request(page: Any, planted: Planted) -> None:
    from playwright.sync_api import expect

    with DashboardServer(planted.url, port=0) as server:
        assert server.url.startswith("http://127.0.0.1:")
        page.goto(server.url)
        page.wait_for_selector("body[data-ready='1']")
        assert text(page, "#total-cost") == money(planted.spend())
        assert page.locator("#refresh").is_visible()

        late = CostEvent("gpt-4o", Usage(input=1000, output=100), cost=Decimal("0.0035"), priced=True,
                         feature="billing", agent_id="biller", session_id="s-9", user_id="dave", ts=T0 + 7200)  # fmt: skip
        with Ledger(planted.url, sync=True) as ledger:
            ledger.record(late)
        page.click("#refresh")  # fetches data.json from the same server: a fresh read
        expect(page.locator("#total-cost")).to_have_text(money(planted.spend() + Decimal("0.0035")))
        assert page.locator("#drill tr.row[data-key='billing']").count() == 1
        assert page.locator("#f-user_id option[value='dave']").count() == 1

        with urllib.request.urlopen(server.url + "data.json") as response:
            assert response.headers["Content-Type"] == "application/json"
            document = json.loads(response.read())
        assert priced_spend(document) == planted.spend() + Decimal("0.0035")
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(server.url + "elsewhere")
        assert missing.value.code == 404
    assert page.network_guard.allowed  # the page and its data.json came through the guard, from 127.0.0.1


def test_a_ledger_that_cannot_be_read_is_a_500_and_the_server_keeps_serving(planted: Planted, tmp_path: Path) -> None:
    with DashboardServer(f"sqlite:///{tmp_path}/missing-dir/x/ledger.db", port=0) as broken:
        with pytest.raises(urllib.error.HTTPError) as failed:
            urllib.request.urlopen(broken.url)
        assert failed.value.code == 500
        assert b"no ledger file at" in failed.value.read()
    assert not (tmp_path / "missing-dir").exists()
    with DashboardServer(planted.url, port=0) as server, urllib.request.urlopen(server.url) as response:
        assert b'id="agentcost-data"' in response.read()


def test_the_command_serves_until_interrupted(planted: Planted) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentcost_core.cli", "dashboard", "--ledger", planted.url, "--serve", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert "at http://127.0.0.1:" in line, (line, proc.stderr.read() if proc.poll() is not None else "")  # type: ignore[union-attr]
        url = line.split(" at ", 1)[1].split()[0]
        with urllib.request.urlopen(url + "data.json") as response:
            assert priced_spend(json.loads(response.read())) == planted.spend()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_bad_arguments_fail_with_one_line(planted: Planted, tmp_path: Path, capsys: Any) -> None:
    assert main(["dashboard", "--ledger", f"sqlite:///{tmp_path}/nothing.db", "--out", str(tmp_path / "x.html")]) == 2
    assert "no ledger file" in capsys.readouterr().err
    assert main(["dashboard", "--ledger", planted.url, "--out", "x.html", "--serve"]) == 2
    assert "not allowed with" in capsys.readouterr().err
    assert main(["dashboard", "--ledger", planted.url]) == 2
    assert main(["dashboard", "--ledger", planted.url, "--serve", "--port", "70000"]) == 2
    assert main(["dashboard", "--ledger", planted.url, "--out", "x.html", "--since", "2d", "--until", "3d"]) == 2
    assert "is not after" in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()


def test_a_window_keeps_only_its_events(planted: Planted, tmp_path: Path) -> None:
    out = tmp_path / "day.html"
    assert main(["dashboard", "--ledger", planted.url, "--out", str(out), "--since", "2026-12-01", "--until",
                 "2026-12-02"]) == 0  # fmt: skip
    html = out.read_text(encoding="utf-8")
    start = html.index('type="application/json">') + len('type="application/json">')
    document = json.loads(html[start : html.index("</script>", start)])
    day = T0 + 86400
    assert priced_spend(document) == planted.spend(since=day, until=day + 86400)
    assert document["count"] == sum(1 for e in planted.calls if day <= e.ts < day + 86400) == 4
