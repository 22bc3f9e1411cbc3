"""A one-slot mailbox between the subscription callbacks and the inference worker.

The tracker must always run on the newest image pair: a queue would make the output lag
further behind the cameras with every frame the model is too slow for. A newer pair replaces
the waiting one, which is counted as a stale pair dropped.
"""
from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """Holds at most one item; thread-safe."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._item: T | None = None
        self._full = False
        self._dropped = 0
        self._closed = False

    def put(self, item: T) -> bool:
        """Store item, replacing (and counting) a waiting one; True when one was replaced."""
        with self._condition:
            replaced = self._full
            if replaced:
                self._dropped += 1
            self._item, self._full = item, True
            self._condition.notify()
            return replaced

    def take(self, timeout: float) -> T | None:
        """The waiting item, waiting up to timeout seconds; None on timeout or after close()."""
        with self._condition:
            if not self._condition.wait_for(lambda: self._full or self._closed, timeout):
                return None
            if not self._full:
                return None
            item, self._item, self._full = self._item, None, False
            return item

    def clear(self) -> None:
        """Forget a waiting item without counting it (e.g. on deactivate)."""
        with self._condition:
            self._item, self._full = None, False

    def close(self) -> None:
        """Wake a waiting take() for good, so the worker can stop."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    @property
    def dropped(self) -> int:
        with self._condition:
            return self._dropped
