"""The cost ledger: a URL-selected backend behind a bounded background writer."""

from .base import LedgerBackend
from .ledger import DEFAULT_LEDGER_URL, Ledger, LedgerStatus, default_ledger_url, open_backend
from .shared import SharedLedger

__all__ = [
    "DEFAULT_LEDGER_URL",
    "Ledger",
    "LedgerBackend",
    "LedgerStatus",
    "SharedLedger",
    "default_ledger_url",
    "open_backend",
]
