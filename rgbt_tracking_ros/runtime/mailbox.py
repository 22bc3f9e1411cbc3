"""The mailbox between the subscription callbacks and the inference worker.

Pairs wait in arrival order, each for at most `max_wait_s` seconds of the runtime's clock.
After a step slower than the cameras' period (the first frame's setup, a full-frame search,
a scheduling hiccup) the worker answers the pairs that arrived meanwhile, oldest first, and
catches up as long as it is faster than the cameras on average. A pair that waited longer is
dropped and counted as stale, so a model slower than the cameras never lags by more than
`max_wait_s` plus one step. With `max_wait_s` 0 only the newest pair waits. At most
`capacity` pairs wait, however young, so fast cameras cannot fill the memory.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PairMailbox(Generic[T]):
    """A FIFO of at most `capacity` items that expire after `max_wait_s` (the newest one never
    does); thread-safe."""

    def __init__(self, max_wait_s: float = 0.0, capacity: int = 10,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._condition = threading.Condition()
        self._items: deque[tuple[float, T]] = deque()
        self._clock = clock
        self._dropped = 0
        self._closed = False
        self.max_wait_s = max_wait_s

    @property
    def max_wait_s(self) -> float:
        return self._max_wait_s

    @max_wait_s.setter
    def max_wait_s(self, seconds: float) -> None:
        if not seconds >= 0.0:
            raise ValueError(f"max_wait_s must be at least 0, got {seconds!r}")
        self._max_wait_s = seconds

    def put(self, item: T) -> int:
        """Queue item; returns how many waiting items expired (and were counted) meanwhile."""
        with self._condition:
            self._items.append((self._clock(), item))
            expired = self._expire()
            self._condition.notify()
            return expired

    def take(self, timeout: float) -> T | None:
        """The oldest item that has not expired, waiting up to timeout seconds for one; None
        on timeout or after close()."""
        with self._condition:
            if not self._condition.wait_for(lambda: bool(self._items) or self._closed, timeout):
                return None
            if not self._items:
                return None
            self._expire()
            return self._items.popleft()[1]

    def _expire(self) -> int:
        """Drop (and count) the items older than max_wait_s (all but the newest at 0) and the
        oldest beyond capacity."""
        now, expired = self._clock(), 0
        while len(self._items) > 1 and (self._max_wait_s == 0.0 or len(self._items) > self.capacity
                                        or now - self._items[0][0] > self._max_wait_s):
            self._items.popleft()
            expired += 1
        self._dropped += expired
        return expired

    def clear(self) -> None:
        """Forget the waiting items without counting them (e.g. on deactivate)."""
        with self._condition:
            self._items.clear()

    def close(self) -> None:
        """Wake a waiting take() for good, so the worker can stop."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    @property
    def dropped(self) -> int:
        with self._condition:
            return self._dropped

    def __len__(self) -> int:
        with self._condition:
            return len(self._items)
