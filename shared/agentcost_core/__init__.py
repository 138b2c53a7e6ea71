"""agentcost_core: the framework-free engine of agentcost.

Usage in non-overlapping buckets, exact Decimal prices, token counting, the cost ledger and
rollups. The LangChain and LlamaIndex adapters translate their objects into these types.
"""

from .alerts import Alert, SpendAnomalies, WebhookSink
from .budgets import Budget, BudgetAlert, BudgetEnforcer, BudgetStoreUnavailable, ScopeContext
from .errors import (
    AgentCostError,
    ConfigurationError,
    LedgerURLError,
    PriceFileError,
    UsageFormatError,
)
from .events import ATTRIBUTION_FIELDS, CostEvent
from .guards import CircuitBreaker, Controls, KillSwitch, RetryPolicy, StuckDetector
from .halts import AgentHalted, BudgetExceeded, TerminationReason
from .ledger import Ledger, default_ledger_url
from .prices import ModelPrice, PriceCatalog
from .prompt_log import PromptLogging, PromptRecord
from .recorder import CostRecorder
from .rollup import Rollup, RollupRow, rollup
from .tokens import ChatMessage, TokenCount, TokenCounter
from .usage import BUCKETS, Usage

__version__ = "0.1.0"

__all__ = [
    "ATTRIBUTION_FIELDS",
    "AgentCostError",
    "AgentHalted",
    "Alert",
    "Budget",
    "BudgetAlert",
    "BudgetEnforcer",
    "BudgetExceeded",
    "BudgetStoreUnavailable",
    "BUCKETS",
    "ChatMessage",
    "CircuitBreaker",
    "Controls",
    "ConfigurationError",
    "CostEvent",
    "CostRecorder",
    "Ledger",
    "KillSwitch",
    "LedgerURLError",
    "ModelPrice",
    "PriceCatalog",
    "PriceFileError",
    "PromptLogging",
    "PromptRecord",
    "RetryPolicy",
    "Rollup",
    "RollupRow",
    "ScopeContext",
    "SpendAnomalies",
    "StuckDetector",
    "TerminationReason",
    "TokenCount",
    "TokenCounter",
    "Usage",
    "UsageFormatError",
    "WebhookSink",
    "__version__",
    "default_ledger_url",
    "rollup",
]
