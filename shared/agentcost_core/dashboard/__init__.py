"""``agentcost dashboard``: a local web page over the ledger (one self-contained file, or served live on
127.0.0.1). :func:`build_document` reads the ledger into the page's data, :func:`render_page` makes the
page, :class:`DashboardServer` serves it."""

from .data import build_document, document_of, priced_spend
from .page import render_page
from .serve import DashboardServer

__all__ = ["DashboardServer", "build_document", "document_of", "priced_spend", "render_page"]
