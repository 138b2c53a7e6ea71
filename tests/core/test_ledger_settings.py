"""A ledger's numeric settings are checked at construction: NaN, infinities, bools, wrong types and
non-positive values fail there with a clear LedgerURLError, never later in the writer thread."""

from __future__ import annotations

import math

import pytest

from agentcost_core import ConfigurationError, Ledger, LedgerURLError
from agentcost_core.ledger.postgres import PostgresBackend
from agentcost_core.ledger.sqlite import SQLiteBackend

BAD_SECONDS = [float("nan"), float("inf"), -float("inf"), True, False, -1, "1", None, 1e300]


@pytest.mark.parametrize("name", ["flush_interval_s", "timeout_s"])
@pytest.mark.parametrize("value", [*(v for v in BAD_SECONDS if v is not None), 0, 0.0])  # timeout_s=None: default
def test_seconds_that_must_be_positive_refuse_bad_values(name, value, tmp_path):
    with pytest.raises(LedgerURLError, match=f"ledger setting {name} must be a finite number of seconds > 0"):
        Ledger(f"sqlite:///{tmp_path / 'l.db'}", **{name: value})


@pytest.mark.parametrize("name", ["full_queue_wait_s", "retry_s"])
@pytest.mark.parametrize("value", BAD_SECONDS)
def test_seconds_that_may_be_zero_refuse_bad_values(name, value, tmp_path):
    with pytest.raises(LedgerURLError, match=f"ledger setting {name} must be a finite number of seconds >= 0"):
        Ledger(f"sqlite:///{tmp_path / 'l.db'}", **{name: value})


@pytest.mark.parametrize("name", ["max_queue", "batch_size"])
@pytest.mark.parametrize("value", [0, -5, 2.0, float("nan"), float("inf"), True, "10", None])
def test_counts_refuse_anything_but_a_positive_whole_number(name, value):
    with pytest.raises(LedgerURLError, match=f"ledger setting {name} must be a whole number > 0"):
        Ledger("memory://", **{name: value})


def test_a_bad_setting_is_a_configuration_error_and_leaves_no_file(tmp_path):
    with pytest.raises(ConfigurationError):
        Ledger(f"sqlite:///{tmp_path / 'l.db'}", flush_interval_s=math.inf)
    assert not (tmp_path / "l.db").exists()  # refused before anything was opened


def test_zero_means_never_wait_and_no_retry_window(tmp_path):
    with Ledger(f"sqlite:///{tmp_path / 'l.db'}", full_queue_wait_s=0, retry_s=0, timeout_s=0.25) as ledger:
        ledger.record_many([])
        assert ledger.count() == 0


def test_backends_check_their_own_deadline(tmp_path, postgres_url):
    with pytest.raises(LedgerURLError, match="timeout_s"):
        SQLiteBackend(f"sqlite:///{tmp_path / 'l.db'}", str(tmp_path / "l.db"), timeout_s=float("nan"))
    with pytest.raises(LedgerURLError, match="timeout_s"):
        PostgresBackend(postgres_url, timeout_s=0)
    backend = SQLiteBackend(f"sqlite:///{tmp_path / 'l.db'}", str(tmp_path / "l.db"))
    try:
        with pytest.raises(LedgerURLError, match="give it to the backend"):
            Ledger(backend=backend, timeout_s=1.0)
    finally:
        backend.close()
