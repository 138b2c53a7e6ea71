"""agentcost's own exception types.

Configuration errors (bad URLs, malformed price files, bad usage payloads) are raised
loudly where the user configures something. Nothing here is raised inside a user's chain
because of an internal fault of ours: adapters log and count those instead.
"""

from __future__ import annotations

__all__ = [
    "AgentCostError",
    "ConfigurationError",
    "LedgerURLError",
    "LedgerUnavailable",
    "PriceFileError",
    "UsageFormatError",
]


class AgentCostError(Exception):
    """Base class of every exception agentcost raises on purpose."""


class ConfigurationError(AgentCostError, ValueError):
    """A setting given to agentcost cannot work; raised at construction."""


class LedgerURLError(ConfigurationError):
    """A ledger URL that agentcost cannot open."""


class LedgerUnavailable(LedgerURLError):
    """A well-formed ledger URL whose database cannot be reached now (a server down, a file locked by
    another process past the wait): a failure while running, not a bad setting (the CLI exits 1)."""


class PriceFileError(ConfigurationError):
    """A price file (ours or LiteLLM's format) that does not parse."""


class UsageFormatError(AgentCostError, ValueError):
    """A provider usage payload that is present but malformed."""
