"""Newer price data in a long-running process: after ``agentcost prices update`` keeps newer
genai-prices data, a process that started before it prices with the new data from then on.

:class:`PriceDataWatcher` looks at the kept data files (``stat`` only: no network, no parsing) and,
when they changed since its last look, loads and compiles the new data and swaps it into its
catalog (:meth:`PriceCatalog.use_base`); model ids resolve again from the next call on. It
watches the data folder the process started with. Data that
does not load (a file being written, a bad file) is logged and the prices in use stay, and the
watcher tries again at its next look. ``PriceCatalog.default()`` watches itself on a background
thread, once a minute (``AGENTCOST_PRICES_WATCH=<seconds>``; ``0`` turns it off); the look never
runs on a caller's thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import PriceFileError
from ..guards.refresher import Refresher
from .data_files import DATA_FILE, META_FILE, data_dir

if TYPE_CHECKING:
    from .catalog import PriceCatalog

__all__ = ["PriceDataWatcher", "kept_data_signature"]

logger = logging.getLogger("agentcost")

#: How often the default catalog looks at the kept data, in seconds.
DEFAULT_PERIOD = 60.0


def kept_data_signature(folder: Path | None = None) -> tuple[tuple[int, int] | None, ...]:
    """(modification time in ns, size) of the kept data file and of its meta file (None: absent),
    in ``folder`` (default: the data folder, :func:`~.data_files.data_dir`)."""
    folder = data_dir() if folder is None else folder
    out = []
    for name in (DATA_FILE, META_FILE):
        try:
            st = (folder / name).stat()
            out.append((st.st_mtime_ns, st.st_size))
        except OSError:
            out.append(None)
    return tuple(out)


class PriceDataWatcher:
    """Reloads ``catalog``'s genai-prices data when the kept data changes.

    ``PriceDataWatcher(catalog, *, period=60.0, clock=time.monotonic)``: :meth:`start` looks every
    ``period`` seconds on a background thread; :meth:`check` looks now, on the caller's thread.
    ``reloads`` counts the reloads, ``error`` is the last load failure (None after a good one).
    """

    def __init__(self, catalog: PriceCatalog, *, period: float = DEFAULT_PERIOD,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        if isinstance(period, bool) or not isinstance(period, (int, float)) or period < 0:
            raise ValueError(f"period must be a number of seconds >= 0, got {period!r}")
        self.catalog = catalog
        #: The data folder watched: the one the process's data came from.
        self.folder = data_dir()
        self.signature = kept_data_signature(self.folder)  # the data the catalog was built from
        self.reloads = 0
        self.error: str | None = None
        self._refresher = Refresher(self.check, period=float(period), clock=clock, name="agentcost-price-data")
        self._refresher.read_elsewhere(clock())

    def check(self) -> bool:
        """Look at the kept data; reload when it changed. True when the catalog now has new data.
        Nothing is done while ``AGENTCOST_DATA_DIR`` names another folder than the watched one."""
        if data_dir() != self.folder:
            return False
        signature = kept_data_signature(self.folder)
        if signature == self.signature:
            return False
        from .base import BasePrices

        try:
            base = BasePrices.load()
        except PriceFileError as e:  # being written, or bad: keep the prices in use, look again later
            self.error = str(e)
            logger.warning("agentcost: the kept price data changed but does not load (%s); prices unchanged", e)
            return False
        self.signature = signature
        self.error = None
        self.catalog.use_base(base)
        self.reloads += 1
        logger.info("agentcost: price data reloaded: %s", base.data_info.get("origin"))
        return True

    def start(self) -> PriceDataWatcher:
        """Look every ``period`` seconds on a background (daemon) thread."""
        self._refresher.start()
        return self

    def request(self) -> int:
        """Ask the background thread to look now; returns the count of looks so far (for :meth:`wait`)."""
        count = self._refresher.count
        self._refresher.request()
        return count

    def wait(self, *, after: int, timeout: float | None = 10.0) -> bool:
        """Wait until the background thread has looked more than ``after`` times."""
        return self._refresher.wait(after=after, timeout=timeout)

    def close(self) -> None:
        self._refresher.close()
