"""Which of a file run's windows are decoded together, and when each one's text may go out:
``earwig transcribe`` prints lines as their windows are done, in the files' order.

Why batches of one padded length: several windows a forward pass is what makes a CPU fast
(``decoding/files``), and a window padded to a length that depends on it alone gives the
same text whichever windows share its batch. Why a bound on what waits: a bucket that fills
slowly (a rare length) would hold back every line after its window, and keep every later
window's frames in memory; once more than ``most`` windows wait, the oldest one's bucket is
decoded, full or not. Windows are taken in the order they come; their results go out in
that order only, so a line is never printed before the lines said before it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any


@dataclass
class _Entry:
    bucket: int | None  # None: nothing to decode (a file's start)
    item: Any
    result: Any = None
    done: bool = False


class WindowQueue:
    def __init__(self, batch: int, most: int) -> None:
        self.batch, self.most = batch, most
        self._entries: deque[_Entry] = deque()
        self._first = 0  # the ticket of _entries[0]

    def add(self, bucket: int, item: Any) -> None:
        """A window to decode, padded to ``bucket`` frames."""
        self._entries.append(_Entry(bucket, item))

    def add_done(self, result: Any) -> None:
        """Something that goes out in order and needs no decoding (a file's header)."""
        self._entries.append(_Entry(None, None, result, True))

    def next_batch(self, flush: bool = False) -> list[tuple[int, Any]]:
        """``(ticket, item)`` of windows to decode together, oldest first; [] while the
        buckets should fill more. ``flush``: no more windows come."""
        waiting = [(self._first + i, e) for i, e in enumerate(self._entries) if not e.done]
        if not waiting:
            return []
        counts: dict[int, int] = {}
        for _, entry in waiting:
            counts[entry.bucket] = counts.get(entry.bucket, 0) + 1
        full = next((bucket for bucket, count in counts.items() if count >= self.batch), None)
        bucket = full if full is not None else waiting[0][1].bucket if flush or len(waiting) > self.most else None
        if bucket is None:
            return []
        return [(ticket, entry.item) for ticket, entry in waiting if entry.bucket == bucket][:self.batch]

    def done(self, ticket: int, result: Any) -> None:
        entry = self._entries[ticket - self._first]
        entry.result, entry.done = result, True

    def ready(self) -> list[Any]:
        """The results that may go out now: done, and everything before them out."""
        out = []
        while self._entries and self._entries[0].done:
            out.append(self._entries.popleft().result)
            self._first += 1
        return out
