"""Batches in flight on remote workers, handed back in input order, lost ones run again.

:func:`ordered_map` keeps at most ``max_in_flight`` batches submitted (memory stays
bounded and the driver's progress bar moves batch by batch), yields each batch with
its result in the order the batches came, and when a worker is lost (its node died,
its process was killed) submits that worker's unfinished batches to another one. The
results come back to the driver, which alone writes them, so a batch that ran twice
is still written once.

Where batches run is a :class:`Dispatcher`'s business (Ray tasks, a pool of actors);
this module knows nothing of Ray, so its logic is tested with a fake dispatcher.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from selfalign.errors import UserError
from selfalign.stage import BatchResult

logger = logging.getLogger(__name__)


class WorkerLost(Exception):
    """The worker running a batch went away (node died, process killed, out of memory)."""


class BatchLostTooOften(UserError, RuntimeError):
    """One batch lost its worker on every attempt: the cluster is losing workers, not the data."""


class Dispatcher(Protocol):
    """Submits batches to workers and fetches their results."""

    def submit(self, batch: list[Any]) -> tuple[str, Any]:
        """Start ``batch`` on a live worker; return the worker's name and a handle."""
        ...

    def result(self, handle: Any) -> BatchResult:
        """Wait for a batch's result. Raises :class:`WorkerLost` when its worker went away;
        any other exception is the stage's own and ends the map."""
        ...

    def done(self, handle: Any) -> bool:
        """Whether a batch has finished (its result can be fetched without waiting)."""
        ...

    def forget(self, worker: str) -> None:
        """Stop sending batches to ``worker``: it is gone."""
        ...


@dataclass
class _InFlight:
    batch: list[Any]
    worker: str
    handle: Any
    attempts: int = 1
    outcome: BatchResult | BaseException | None = None
    """Fetched early (its worker was lost after it finished); handed out at its turn."""


def ordered_map(
    dispatcher: Dispatcher,
    batches: Iterable[list[Any]],
    *,
    max_in_flight: Callable[[], int],
    max_attempts: int = 3,
) -> Iterator[tuple[list[Any], BatchResult]]:
    """Run every batch through ``dispatcher``; yield ``(batch, result)`` in input order.

    ``max_in_flight`` is asked before each submission (a pool that lost workers takes
    fewer). A batch whose worker is lost runs again on another worker, at most
    ``max_attempts`` times in all.
    """
    window: deque[_InFlight] = deque()
    source = iter(batches)
    exhausted = False

    def resubmit(entry: _InFlight, reason: str) -> None:
        if entry.attempts >= max_attempts:
            raise BatchLostTooOften(
                f"a batch of {len(entry.batch)} inputs lost its worker {entry.attempts} times "
                f"(last: {reason}); the cluster keeps losing workers. Check the nodes "
                "(`ray status`), then run the same command again: it resumes"
            )
        entry.attempts += 1
        entry.worker, entry.handle = dispatcher.submit(entry.batch)
        logger.warning(
            "a batch of %d inputs lost its worker (%s); running it again on %s (attempt %d/%d)",
            len(entry.batch),
            reason,
            entry.worker,
            entry.attempts,
            max_attempts,
        )

    while True:
        while not exhausted and len(window) < max(1, max_in_flight()):
            batch = next(source, None)
            if batch is None:
                exhausted = True
                break
            worker, handle = dispatcher.submit(batch)
            window.append(_InFlight(batch, worker, handle))
        if not window:
            return
        head = window[0]
        try:
            result = _outcome(dispatcher, head)
        except WorkerLost as exc:
            lost = head.worker
            dispatcher.forget(lost)
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            resubmit(head, reason)
            # The lost worker's other batches go elsewhere now, not one by one when each
            # reaches the head of the window; those it finished may still hold a result.
            for entry in list(window)[1:]:
                if entry.worker != lost or entry.outcome is not None:
                    continue
                if dispatcher.done(entry.handle):
                    try:
                        entry.outcome = dispatcher.result(entry.handle)
                    except WorkerLost:
                        resubmit(entry, reason)
                    except Exception as error:  # the stage's own: raised at its turn
                        entry.outcome = error
                else:
                    resubmit(entry, reason)
            continue
        window.popleft()
        yield head.batch, result


def _outcome(dispatcher: Dispatcher, entry: _InFlight) -> BatchResult:
    """The entry's result: fetched early, or from its worker now."""
    outcome, entry.outcome = entry.outcome, None
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome if outcome is not None else dispatcher.result(entry.handle)
