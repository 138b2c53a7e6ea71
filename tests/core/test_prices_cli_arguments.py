"""``agentcost prices`` refuses arguments it cannot answer with one clear line and exit 2 (a bad
argument, per ``cli.main``), and shows a bad LiteLLM price as it was written."""

from __future__ import annotations

import json

from agentcost_core.cli import main


def test_an_unknown_provider_is_a_bad_argument(capsys) -> None:
    assert main(["prices", "--provider", "nosuch"]) == 2
    out = capsys.readouterr()
    assert out.err.strip() == "agentcost: no models for provider 'nosuch'; `agentcost prices` lists the providers"
    assert out.out == ""


def test_update_after_a_model_id_is_a_bad_argument(capsys) -> None:
    assert main(["prices", "gpt-4o", "update"]) == 2
    out = capsys.readouterr()
    assert out.err.strip() == "agentcost: `update` is not a model id: run `agentcost prices update` on its own"
    assert out.out == ""


def test_a_bad_litellm_price_is_shown_as_written(tmp_path, capsys) -> None:
    path = tmp_path / "lite.json"
    path.write_text(json.dumps({"x": {"litellm_provider": "openai", "input_cost_per_token": "abc"}}))
    assert main(["prices", "--file", str(path), "x"]) == 2
    err = capsys.readouterr().err
    assert "x.input_cost_per_token (USD per token): 'abc' is not a number" in err and "***" not in err


def test_out_of_range_prices_give_one_limit_in_one_wording(tmp_path, capsys) -> None:
    limit = "is out of range: a price has at most 30 decimal places and is at most 1,000,000 USD per 1M tokens"
    for price in ("1e-60000", "5000000"):
        path = tmp_path / "mine.json"
        path.write_text(json.dumps({"models": {"x": {"input": price, "output": "1"}}}))
        assert main(["prices", "--file", str(path), "x"]) == 2
        assert f"models['x'].input: price '{price}' {limit}" in capsys.readouterr().err
