"""``agentcost killswitch status``: a source that cannot be read makes the state unknown (one line on
stderr, exit 1), never "off"; a readable source shows its state (exit 0)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentcost_core.cli import main
from agentcost_core.guards.kill_switch import KillSwitch, KillSwitchUnreadable


@pytest.fixture(autouse=True)
def _no_env_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AGENTCOST_KILL_SWITCH", "AGENTCOST_KILL_SWITCH_FILE", "AGENTCOST_KILL_SWITCH_REDIS_URL"):
        monkeypatch.delenv(var, raising=False)


def test_status_on_an_unreachable_redis_says_unknown_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["killswitch", "status", "--redis-url", "redis://127.0.0.1:1/0"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith(
        "agentcost: kill switch: unknown (redis:agentcost:kill_switch cannot be read: ConnectionError"
    )


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_status_on_a_malformed_file_says_unknown_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    path = tmp_path / "kill"
    path.write_text('{"global": "yes"}', encoding="utf-8")
    assert main(["killswitch", "status", "--file", str(path), "--format", fmt]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    expected = (
        f"agentcost: kill switch: unknown (file:{path} cannot be read: "
        """malformed content ("global" must be true or false, got 'yes'))"""
    )
    assert err.splitlines() == [expected]


def test_status_of_a_readable_file_shows_its_state(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "kill"
    assert main(["killswitch", "status", "--file", str(path), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["tripped"] is False  # a missing file is off
    assert main(["killswitch", "trip", "--file", str(path), "--agent", "bot", "--format", "json"]) == 0
    capsys.readouterr()
    assert main(["killswitch", "status", "--file", str(path), "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["agents"] == ["bot"] and err == ""


def test_read_now_raises_for_an_unreachable_url_whatever_on_error_says() -> None:
    for on_error in ("open", "closed"):
        ks = KillSwitch(env=None, url="http://127.0.0.1:1/kill-switch", timeout=1.0, on_error=on_error)
        with ks, pytest.raises(KillSwitchUnreadable, match=r"^url:http://127\.0\.0\.1:1/kill-switch cannot be read: "):
            ks.read_now()
