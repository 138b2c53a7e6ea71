"""``agentcost prices update`` fetches genai-prices data (from a local HTTP server here: no network),
validates it, keeps it under the data folder and prices with it from then on; ``agentcost prices``
says which data is in use and how old it is, lists by provider, searches and names each price's source."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agentcost_core import PriceCatalog, PriceFileError, Usage
from agentcost_core.cli import main
from agentcost_core.prices.base import BasePrices
from agentcost_core.prices.commands import data_summary
from agentcost_core.prices.data_files import DEFAULT_URL, update_data

NEWER = [
    {
        "id": "openai", "name": "OpenAI", "api_pattern": "https://api\\.openai\\.com",
        "model_match": {"starts_with": "gpt-"},
        "models": [
            {"id": "gpt-4o", "match": {"starts_with": "gpt-4o"},
             "prices": {"input_mtok": "2.75", "output_mtok": "11", "cache_read_mtok": "1.375"}},
        ],
    }
]  # fmt: skip


@pytest.fixture
def server():
    """A local HTTP server: /data.json answers NEWER, /broken.json a provider list that does not validate."""
    bodies = {"/data.json": json.dumps(NEWER).encode(), "/broken.json": b'[{"id": "x"}]', "/html": b"<html>"}
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            body = bodies.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.asked = asked  # type: ignore[attr-defined]
    yield httpd
    httpd.shutdown()
    thread.join(timeout=10)
    httpd.server_close()


def _url(httpd, path: str) -> str:  # type: ignore[no-untyped-def]
    return f"http://127.0.0.1:{httpd.server_address[1]}{path}"


@pytest.fixture
def data_dir(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AGENTCOST_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_update_keeps_the_fetched_data_and_prices_with_it(server, data_dir, capsys) -> None:
    assert main(["prices", "update", "--url", _url(server, "/data.json")]) == 0
    assert "kept 1 models of 1 providers" in capsys.readouterr().out
    assert server.asked == ["/data.json"] and (data_dir / "genai-prices.json").is_file()
    catalog = PriceCatalog(base=BasePrices.load())  # what a new process's default catalog is built from
    gpt = catalog.get("gpt-4o-2024-08-06")
    assert gpt.base.input == 2.75 and catalog.cost("gpt-4o", Usage(input=1_000_000)) == 2.75
    assert gpt.origin.startswith("genai-prices data ")  # events priced by it say so
    info = data_summary(catalog)
    assert info["path"] == str(data_dir / "genai-prices.json") and info["url"] == _url(server, "/data.json")
    assert info["age_days"] == 0 and not info["stale"]


def test_update_refuses_data_that_does_not_validate_and_keeps_the_previous_file(server, data_dir, capsys) -> None:
    update_data(url=_url(server, "/data.json"))
    kept = (data_dir / "genai-prices.json").read_bytes()
    for path, message in (("/broken.json", "does not validate"), ("/html", "not JSON"), ("/missing", "cannot fetch")):
        assert main(["prices", "update", "--url", _url(server, path)]) == 1
        assert message in capsys.readouterr().err
    assert (data_dir / "genai-prices.json").read_bytes() == kept
    with pytest.raises(PriceFileError, match="http"):
        update_data(url="file:///etc/passwd")


def test_update_from_a_file_for_air_gapped_mirrors(tmp_path, data_dir) -> None:
    mirror = tmp_path / "mirror.json"
    mirror.write_text(json.dumps(NEWER))
    done = update_data(file=mirror)
    assert done["models"] == 1 and done["url"] == str(mirror)
    assert PriceCatalog(base=BasePrices.load()).get("gpt-4o").base.output == 11


def test_the_default_url_is_the_one_genai_prices_updater_fetches() -> None:
    from genai_prices.update_prices import DEFAULT_UPDATE_URL

    assert DEFAULT_URL == DEFAULT_UPDATE_URL


def test_prices_says_which_data_is_in_use_and_warns_when_it_is_old(server, data_dir, capsys, monkeypatch) -> None:
    assert main(["prices"]) == 0  # packaged data: providers and their model counts
    out = capsys.readouterr()
    assert "price data: genai-prices" in out.out and "packaged" in out.out and "openrouter" in out.out
    update_data(url=_url(server, "/data.json"))
    meta = data_dir / "genai-prices.meta.json"
    old = json.loads(meta.read_text())
    old["fetched"] -= 45 * 86400
    meta.write_text(json.dumps(old))
    catalog = PriceCatalog(base=BasePrices.load())
    monkeypatch.setattr(PriceCatalog, "default", classmethod(lambda cls: catalog))
    assert main(["prices", "--provider", "openai"]) == 0
    out = capsys.readouterr()
    assert "45 days old" in out.err and "agentcost prices update" in out.err
    assert "kept at" in out.out and "gpt-4o" in out.out


def test_prices_search_and_source_of_each_price(capsys) -> None:
    assert main(["prices", "--search", "claude-3-5-sonnet", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data.pop("_price_data")["origin"].startswith("genai-prices")
    assert data and all("claude-3-5-sonnet" in k.lower() for k in data)  # keyed provider/model
    assert data["anthropic/claude-3-5-sonnet"]["origin"] == "genai-prices 0.2.3 + overlay 2026-11-23"
    assert data["google/claude-3-5-sonnet"]["origin"] == "genai-prices 0.2.3"  # Vertex's price
    assert main(["prices", "gpt-4o"]) == 0
    assert "gpt-4o: genai-prices" in capsys.readouterr().out  # the source line of each looked-up price
