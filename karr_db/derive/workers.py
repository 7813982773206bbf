"""Worker processes that check documents ahead of the writes."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_all_start_methods, get_context

from karr_db.derive.parse import _Derived, _parse

logger = logging.getLogger(__name__)

#: Runs from which :func:`derive_rows` checks documents in worker processes by
#: default: starting them (a fresh interpreter importing the layer) costs about
#: a second, what checking ~2,000 documents here costs.
POOL_FROM_RUNS = 2000


def _workers(total: int) -> int:
    """Worker processes for ``total`` runs: one per CPU (at most 4); none for few runs,
    nor where processes cannot be forked (see :class:`_Parser`)."""
    if total < POOL_FROM_RUNS or "fork" not in get_all_start_methods():
        return 0
    return max(1, min(4, os.cpu_count() or 1))


class _Parser:
    """Checks the documents of the batches ahead while this process writes the rows
    of the current one: in ``workers`` processes, or here when there are none or
    they fail.

    Workers are forked: a spawned one re-imports the caller's main module, and a
    script calling ``upgrade`` without an ``if __name__ == "__main__"`` guard would
    run its upgrade again in the worker, which would wait for this transaction's
    lock while this transaction waits for the worker. A forked worker only runs
    :func:`_parse` on the texts it is sent; it never touches the connection it
    inherits and leaves through ``os._exit``.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool: ProcessPoolExecutor | None = None
        if workers > 0:
            try:
                self.pool = ProcessPoolExecutor(workers, mp_context=get_context("fork"))
            except (OSError, ValueError) as exc:
                logger.warning("checking documents in this process: %s", exc)

    def submit(self, texts: list[str | None]) -> Callable[[], list[_Derived | str]]:
        """Start checking ``texts``; the returned call gives the results in order."""
        pool = self.pool
        if pool is None:
            return lambda: _parse(texts)
        size = -(-len(texts) // self.workers)
        try:
            futures = [
                pool.submit(_parse, texts[start : start + size])
                for start in range(0, len(texts), size)
            ]
        except (BrokenProcessPool, RuntimeError) as exc:
            return self._here(texts, exc)

        def results() -> list[_Derived | str]:
            try:
                return [item for future in futures for item in future.result()]
            except (BrokenProcessPool, OSError) as exc:
                return self._here(texts, exc)()

        return results

    def _here(
        self, texts: list[str | None], exc: BaseException
    ) -> Callable[[], list[_Derived | str]]:
        logger.warning("worker processes failed (%s); checking documents in this process", exc)
        self.close()
        return lambda: _parse(texts)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
