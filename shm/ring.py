"""A lock-free, single-writer, many-reader broadcast ring in shared memory.

Why this shape: audio must never wait for a slow consumer. The writer (a capture or mel
actor) never blocks and never looks at its readers; each reader keeps its own cursor and
reads at its own pace. A reader that falls more than a ring behind is told how many items
it lost (an *overrun*) and never sees a half-overwritten item. This is the LMAX Disruptor's
single-writer sequence design, with one monotonic 64-bit sequence instead of locks.

Layout of one segment (all counters int64, each on its own 64-byte cache line so readers
and the writer do not false-share)::

    line 0    magic, version, capacity, item_len, dtype code, max_readers
    line 1    claimed    sequence up to which slots may be being overwritten
    line 2    published  number of items whose data is complete (the write sequence)
    line 3+r  cursor of reader slot r (-1 when unused), read only by backpressure
    stamps    int64[capacity]  monotonic ns at which each item was captured
    data      dtype[capacity, item_len]

Item ``n`` lives in slot ``n % capacity``; its absolute position (sample or frame index) is
``n * item_len`` or ``n``, so nothing has to carry it separately.

Protocol (Boehm's seqlock, "Can seqlocks get along with programming language memory
models?", 2012, with the sequence doubling as the lock word):

    writer, items n..n+k-1:              reader, from cursor s:
      claimed   = n + k                    p = published
      fence_release()                      fence_acquire()
      write stamps and data slots          if s < p - capacity: overrun, s = p - capacity
      fence_release()                      copy items s..p-1
      published = n + k                    fence_acquire()
                                           c = claimed
                                           items below c - capacity were being
                                           overwritten during the copy: drop them
                                           as overrun

The first release fence keeps the claim visible before any overwritten byte; the second
keeps the data visible before ``published``. On the reader side the first acquire fence
keeps the copy after the load of ``published``, the second keeps the re-check of
``claimed`` after the copy. Counters are aligned 8-byte words, which x86-64 and ARM64 load
and store single-copy atomically.

x86-64 is TSO: stores become visible in program order and loads are not reordered with
loads, so the fences only need to stop the *compiler* from reordering, which the boundary
between separate C calls (numpy copy, numpy scalar store) already does. ARM64 reorders
both, so the fences are real ``dmb`` instructions from the small C extension
``earwig.shm._fence`` (``atomic_thread_fence``). Without that extension the ring refuses to
run on anything but x86.

Waiting: ``await reader.wait()`` returns at once when data is there; otherwise it yields to
the event loop for a short spin window (sub-millisecond wake-up for the next item) and then
sleeps in growing steps up to ``max_sleep_s``, so an idle reader costs almost nothing.
"""

from __future__ import annotations

import asyncio
import platform
import time
from dataclasses import dataclass

import numpy as np

from earwig.shm import segments

try:
    from earwig.shm._fence import acquire as _fence_acquire
    from earwig.shm._fence import release as _fence_release
except ImportError:  # pragma: no cover - depends on how earwig was installed
    if platform.machine().lower() not in {"x86_64", "amd64", "i386", "i686"}:
        raise ImportError(
            f"earwig's shared-memory ring needs its compiled memory fence on "
            f"{platform.machine()}: reinstall earwig where a C compiler is available"
        ) from None

    def _fence_acquire() -> None:
        """x86 (TSO) needs no hardware fence; see the module docstring."""

    _fence_release = _fence_acquire

_MAGIC = 0x45415257_52494E47  # "EARWRING"
_VERSION = 1
_LINE = 8  # int64 words per 64-byte cache line
_MAGIC_W, _VERSION_W, _CAPACITY_W, _ITEM_LEN_W, _DTYPE_W, _READERS_W = range(6)
_CLAIMED_W = 1 * _LINE
_PUBLISHED_W = 2 * _LINE
_FIRST_READER_W = 3 * _LINE
_DTYPES = {"float32": 1, "int16": 2, "float64": 3, "int64": 4}


@dataclass(frozen=True)
class RingSpec:
    """What a process needs to attach a ring: picklable, sent to actors at spawn."""

    name: str
    capacity: int
    item_len: int
    dtype: str = "float32"
    max_readers: int = 8

    def __post_init__(self) -> None:
        if self.capacity < 2 or self.capacity & (self.capacity - 1):
            raise ValueError(f"ring capacity must be a power of two >= 2, not {self.capacity}")
        if self.item_len < 1:
            raise ValueError(f"ring item_len must be >= 1, not {self.item_len}")
        if self.dtype not in _DTYPES:
            raise ValueError(f"ring dtype must be one of {sorted(_DTYPES)}, not {self.dtype!r}")

    @property
    def header_words(self) -> int:
        return _FIRST_READER_W + self.max_readers * _LINE

    @property
    def nbytes(self) -> int:
        item_bytes = self.item_len * np.dtype(self.dtype).itemsize
        return self.header_words * 8 + self.capacity * (8 + item_bytes)


@dataclass(frozen=True)
class Batch:
    """Items copied out of a ring: ``data[i]`` is item ``seq + i``."""

    seq: int
    data: np.ndarray
    time_ns: np.ndarray
    lost: int

    @property
    def end(self) -> int:
        """Sequence just past the last item of this batch."""
        return self.seq + len(self.data)


class Ring:
    """One shared-memory segment laid out as above. Create in the supervisor, attach elsewhere."""

    def __init__(self, spec: RingSpec, segment) -> None:
        self.spec = spec
        self._segment = segment
        buf = segment.buf
        self._header = np.ndarray((spec.header_words,), np.int64, buffer=buf)
        stamps_at = spec.header_words * 8
        self._stamps = np.ndarray((spec.capacity,), np.int64, buffer=buf, offset=stamps_at)
        self._data = np.ndarray(
            (spec.capacity, spec.item_len), spec.dtype, buffer=buf,
            offset=stamps_at + spec.capacity * 8,
        )

    @classmethod
    def create(cls, spec: RingSpec) -> Ring:
        ring = cls(spec, segments.create(spec.name, spec.nbytes))
        header = ring._header
        header[:] = 0
        header[[_MAGIC_W, _VERSION_W, _CAPACITY_W, _ITEM_LEN_W, _DTYPE_W, _READERS_W]] = [
            _MAGIC, _VERSION, spec.capacity, spec.item_len, _DTYPES[spec.dtype], spec.max_readers,
        ]
        header[_FIRST_READER_W::_LINE] = -1
        return ring

    @classmethod
    def attach(cls, name: str) -> Ring:
        """Attach an existing ring by name; its shape comes from the segment's own header."""
        segment = segments.attach(name)
        header = np.ndarray((_LINE,), np.int64, buffer=segment.buf)
        if int(header[_MAGIC_W]) != _MAGIC or int(header[_VERSION_W]) != _VERSION:
            del header
            segment.close()
            raise ValueError(f"shared-memory segment {name!r} is not an earwig ring")
        dtype = {code: name for name, code in _DTYPES.items()}[int(header[_DTYPE_W])]
        spec = RingSpec(name, int(header[_CAPACITY_W]), int(header[_ITEM_LEN_W]), dtype,
                        int(header[_READERS_W]))
        del header
        return cls(spec, segment)

    @property
    def published(self) -> int:
        """Number of items ever written: the next item's sequence number."""
        return int(self._header[_PUBLISHED_W])

    def writer(self) -> RingWriter:
        return RingWriter(self)

    def reader(self, slot: int | None = None, start: int | None = None) -> RingReader:
        return RingReader(self, slot, start)

    def reader_cursors(self) -> list[int]:
        """Cursors of the reader slots in use (readers that announce their progress)."""
        cursors = self._header[_FIRST_READER_W::_LINE]
        return [int(c) for c in cursors if c >= 0]

    def close(self) -> None:
        """Detach this process; the views must go before the mapping can be closed."""
        self._header = self._stamps = self._data = None  # type: ignore[assignment]
        self._segment.close()

    def unlink(self) -> None:
        segments.unlink(self._segment)


class RingWriter:
    """The one writer of a ring. Never waits; resumes after the last published item."""

    def __init__(self, ring: Ring) -> None:
        self._ring = ring
        self._next = ring.published
        self._claimed = int(ring._header[_CLAIMED_W])

    @property
    def next_seq(self) -> int:
        return self._next

    def write(self, items: np.ndarray, time_ns: int | np.ndarray | None = None) -> int:
        """Publish ``items`` (shape ``(k, item_len)`` or ``(item_len,)``); returns the first seq.

        ``time_ns`` is the monotonic capture time of each item (or one value for all);
        it defaults to now.
        """
        ring = self._ring
        capacity = ring.spec.capacity
        items = np.asarray(items).reshape(-1, ring.spec.item_len)
        stamps = np.broadcast_to(
            np.asarray(time.monotonic_ns() if time_ns is None else time_ns, np.int64), len(items)
        )
        first = self._next
        for at in range(0, len(items), capacity):
            self._publish(items[at:at + capacity], stamps[at:at + capacity])
        return first

    def _publish(self, items: np.ndarray, stamps: np.ndarray) -> None:
        ring, n, k = self._ring, self._next, len(items)
        header, capacity = ring._header, ring.spec.capacity
        # A writer that died mid-write left `claimed` ahead; it must never move back.
        self._claimed = max(self._claimed, n + k)
        header[_CLAIMED_W] = self._claimed
        _fence_release()
        start = n % capacity
        head = min(k, capacity - start)
        ring._data[start:start + head] = items[:head]
        ring._stamps[start:start + head] = stamps[:head]
        ring._data[:k - head] = items[head:]
        ring._stamps[:k - head] = stamps[head:]
        _fence_release()
        header[_PUBLISHED_W] = n + k
        self._next = n + k


class RingReader:
    """One reader's cursor over a ring.

    With a ``slot`` the cursor is also stored in the ring, so a restarted reader resumes
    where it stopped and a replay source can pace itself to its slowest reader.
    Without a ``start`` it begins at the slot's stored cursor, else at the newest item.
    """

    def __init__(self, ring: Ring, slot: int | None = None, start: int | None = None,
                 spin_s: float = 0.0003, max_sleep_s: float = 0.004) -> None:
        if slot is not None and not 0 <= slot < ring.spec.max_readers:
            raise ValueError(f"reader slot {slot} outside 0..{ring.spec.max_readers - 1}")
        self._ring = ring
        self._slot_word = None if slot is None else _FIRST_READER_W + slot * _LINE
        stored = -1 if self._slot_word is None else int(ring._header[self._slot_word])
        if start is None:
            start = stored if stored >= 0 else ring.published
        self.position = start
        self.overruns = 0
        self._unreported_lost = 0
        self._spin_s = spin_s
        self._max_sleep_s = max_sleep_s
        self._announce()

    def available(self) -> int:
        return max(0, self._ring.published - self.position)

    def read(self, max_items: int | None = None) -> Batch | None:
        """Copy out what is published from the cursor on (at most ``max_items``), or None.

        Items lost to an overrun are counted in ``overruns`` at once and reported in the
        ``lost`` of the next batch, so ``batch.seq - batch.lost`` is always the previous end.
        """
        ring = self._ring
        header, capacity = ring._header, ring.spec.capacity
        lost = 0
        batch = None
        while batch is None:
            published = int(header[_PUBLISHED_W])
            _fence_acquire()
            oldest = published - capacity
            if self.position < oldest:
                lost += oldest - self.position
                self.position = oldest
            count = published - self.position
            if max_items is not None:
                count = min(count, max_items)
            if count <= 0:
                break
            slots = np.arange(self.position, self.position + count) % capacity
            data, stamps = ring._data[slots], ring._stamps[slots]
            _fence_acquire()
            torn = int(header[_CLAIMED_W]) - capacity - self.position
            if torn >= count:  # the writer lapped us during the copy: all of it is suspect
                lost += count
            else:
                skip = max(0, torn)
                lost += skip
                batch = Batch(self.position + skip, data[skip:], stamps[skip:],
                              self._unreported_lost + lost)
            self.position += count
        self.overruns += lost
        self._unreported_lost = 0 if batch else self._unreported_lost + lost
        self._announce()
        return batch

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait until an item is available; False on timeout."""
        if self.available():
            return True
        loop = asyncio.get_running_loop()
        now = loop.time()
        deadline = None if timeout is None else now + timeout
        spin_until = now + self._spin_s
        sleep = 0.0
        while not self.available():
            now = loop.time()
            if deadline is not None and now >= deadline:
                return False
            if now >= spin_until:
                sleep = min(self._max_sleep_s, max(0.001, sleep * 2))
                if deadline is not None:
                    sleep = min(sleep, deadline - now)
            await asyncio.sleep(sleep)
        return True

    def _announce(self) -> None:
        if self._slot_word is not None:
            self._ring._header[self._slot_word] = self.position

    def release_slot(self) -> None:
        """Stop announcing a cursor: a replay source no longer paces itself to this reader."""
        if self._slot_word is not None:
            self._ring._header[self._slot_word] = -1
