"""The dashboard page: one HTML file holding its data, its script and its styles (nothing to fetch).

The page's Content-Security-Policy lets it load nothing from anywhere (no CDN, no font, no image
server): the file works with the network off. A page served by ``agentcost dashboard --serve`` may
also fetch its own ``data.json`` from the server that sent it (its refresh button).
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

__all__ = ["render_page"]

_STATIC = "agentcost_core.dashboard"
_CSP_FILE = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
_CSP_LIVE = _CSP_FILE + "; connect-src 'self'"


def _asset(name: str) -> str:
    return resources.files(_STATIC).joinpath("static", name).read_text(encoding="utf-8")


def _script_json(document: dict[str, Any]) -> str:
    """JSON that is safe inside ``<script>``: no ``<`` can close the element (``\\u003c`` reads the same)."""
    return json.dumps(document, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


def render_page(document: dict[str, Any], *, live: bool = False) -> str:
    """The whole page for ``document`` (see :func:`~agentcost_core.dashboard.data.build_document`).

    ``live``: served by ``--serve``, the page may fetch a fresh ``data.json`` from its own server."""
    before, rest = _asset("dashboard.html").split("{{STYLE}}")
    middle, rest = rest.split("{{DATA}}")
    between, after = rest.split("{{SCRIPT}}")
    head = before.replace("{{CSP}}", _CSP_LIVE if live else _CSP_FILE)
    return "".join(
        (head, _asset("dashboard.css"), middle, _script_json({**document, "live": live}), between,
         _asset("dashboard.js"), after)
    )  # fmt: skip
