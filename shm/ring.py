"""A lock-free, single-writer, many-reader broadcast ring in shared memory.

Why this shape: audio must never wait for a slow consumer. The writer (a capture or mel
actor) never blocks and never looks at its readers; each reader keeps its own cursor and
reads at its own pace. A reader that falls more than a ring behind is told how many items
it lost (an *overrun*) and never sees a half-overwritten item. This is the LMAX Disruptor's
single-writer sequence design, with one monotonic 64-bit sequence instead of locks.

Layout of one segment (all counters int64, each on its own 64-byte cache line so readers
and the writer do not false-share)::

    line 0    magic, version, capacity, item_len, dtype code, max_readers, sleepers
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
the event loop for a short spin window, then sleeps until the writer's next publish. On
Linux the sleep is a futex on the low 32 bits of ``published`` (in a helper thread, so the
event loop stays free): the writer calls FUTEX_WAKE after publishing once any reader has
set ``sleepers``, and the kernel compares the word with the value the reader saw, so a
publish between the reader's check and its sleep is never missed. ``sleepers`` is set once
and never cleared; the only wake-up that can be missed is the one racing that first set
(the writer's load of ``sleepers`` may pass its store of ``published``), and the futex
timeout bounds it. Elsewhere the reader sleeps in growing steps up to ``max_sleep_s``.
An idle reader costs nothing either way.
"""

from __future__ import annotations

import asyncio
import platform
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from earwig.shm import segments

try:
    from earwig.shm import _fence
except ImportError:  # pragma: no cover - depends on how earwig was installed
    _fence = None
    if platform.machine().lower() not in {"x86_64", "amd64", "i386", "i686"}:
        raise ImportError(
            f"earwig's shared-memory ring needs its compiled memory fence on "
            f"{platform.machine()}: reinstall earwig where a C compiler is available"
        ) from None

    def _fence_acquire() -> None:
        """x86 (TSO) needs no hardware fence; see the module docstring."""

    _fence_release = _fence_acquire
else:
    _fence_acquire, _fence_release = _fence.acquire, _fence.release
#: Linux futex on the write sequence, or None (then readers poll with adaptive sleeps).
_futex_wait = getattr(_fence, "wait", None)
_futex_wake = getattr(_fence, "wake", None)

_MAGIC = 0x45415257_52494E47  # "EARWRING"
_VERSION = 1
_LINE = 8  # int64 words per 64-byte cache line
_MAGIC_W, _VERSION_W, _CAPACITY_W, _ITEM_LEN_W, _DTYPE_W, _READERS_W, _SLEEPERS_W = range(7)
_CLAIMED_W = 1 * _LINE
_PUBLISHED_W = 2 * _LINE
_FIRST_READER_W = 3 * _LINE
#: Byte offset of the low 32 bits of ``published``: the futex word.
_FUTEX_OFFSET = _PUBLISHED_W * 8 + (0 if sys.byteorder == "little" else 4)
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


class Batch(NamedTuple):
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
        # The same words through a memoryview: a scalar load or store costs ~40 ns, not ~150.
        stamps_at = spec.header_words * 8
        self._words = buf[:stamps_at].cast("q")
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
        return self._words[_PUBLISHED_W]

    def writer(self) -> RingWriter:
        return RingWriter(self)

    def reader(self, slot: int | None = None, start: int | None = None, announces_reads: bool = True) -> RingReader:
        return RingReader(self, slot, start, announces_reads=announces_reads)

    def slot_cursor(self, slot: int) -> int | None:
        """The cursor stored in reader slot ``slot`` (None: unused): where a reader killed
        while holding it must begin again."""
        stored = int(self._words[_FIRST_READER_W + slot * _LINE])
        return stored if stored >= 0 else None

    def get(self, seq: int, count: int | None = None) -> Batch | None:
        """Items ``seq`` to ``seq + count`` (``count=None``: all published) as the ring holds
        them now, without a cursor: random access. Those already overwritten are left out
        (``batch.seq`` is then later than ``seq``); None when none of them is here."""
        end = None if count is None else seq + count
        while True:
            before = seq
            batch, _, seq = self._copy(seq, end=end)
            if batch is not None or seq == before:
                return batch

    def samples(self, start: int, end: int) -> np.ndarray | None:
        """Samples ``start..end`` of a one-channel ring, if it holds every one of them now."""
        item_len = self.spec.item_len
        first = start // item_len
        batch = self.get(first, (end - 1) // item_len + 1 - first) if end > start else None
        if batch is None or batch.seq != first or batch.end * item_len < end:
            return None
        return batch.data.reshape(-1)[start - first * item_len:end - first * item_len]

    def stamp_ns(self, position: int) -> int | None:
        """When the item holding sample/frame ``position`` was written (its writer's stamp),
        or None while it is not written yet or after it was overwritten."""
        seq = position // self.spec.item_len
        batch = self.get(seq, 1)
        return None if batch is None or batch.seq != seq else int(batch.time_ns[0])

    def _copy(self, position: int, max_items: int | None = None,
              end: int | None = None) -> tuple[Batch | None, int, int]:
        """One attempt at copying the items published from ``position`` on (at most
        ``max_items``, none from ``end`` on): the batch (None when there is nothing, or when
        all of it was overwritten during the copy), the items lost, and the position after."""
        words, capacity = self._words, self.spec.capacity
        published = words[_PUBLISHED_W]
        _fence_acquire()
        oldest = published - capacity
        lost = max(0, oldest - position)
        position += lost
        count = (published if end is None else min(published, end)) - position
        if max_items is not None:
            count = min(count, max_items)
        if count <= 0:
            return None, lost, position
        start = position % capacity
        head = min(count, capacity - start)
        if head == count:
            data = self._data[start:start + count].copy()
            stamps = self._stamps[start:start + count].copy()
        else:
            data = np.concatenate((self._data[start:], self._data[:count - head]))
            stamps = np.concatenate((self._stamps[start:], self._stamps[:count - head]))
        _fence_acquire()
        torn = words[_CLAIMED_W] - capacity - position
        if torn >= count:  # the writer lapped us during the copy: all of it is suspect
            return None, lost + count, position + count
        skip = max(0, torn)
        return Batch(position + skip, data[skip:], stamps[skip:], lost + skip), lost + skip, position + count

    def reader_cursors(self) -> list[int]:
        """Cursors of the reader slots in use (readers that announce their progress)."""
        cursors = self._header[_FIRST_READER_W::_LINE]
        return [int(c) for c in cursors if c >= 0]

    def close(self) -> None:
        """Detach this process; the views must go before the mapping can be closed."""
        self._words.release()
        self._header = self._stamps = self._data = None  # type: ignore[assignment]
        self._segment.close()

    def unlink(self) -> None:
        segments.unlink(self._segment)


class RingWriter:
    """The one writer of a ring. Never waits; resumes after the last published item."""

    def __init__(self, ring: Ring) -> None:
        self._ring = ring
        self._next = ring.published
        self._claimed = ring._words[_CLAIMED_W]

    @property
    def next_seq(self) -> int:
        return self._next

    def write(self, items: np.ndarray, time_ns: int | np.ndarray | None = None) -> int:
        """Publish ``items`` (shape ``(k, item_len)`` or ``(item_len,)``); returns the first seq.

        ``time_ns`` is the monotonic capture time of each item (or one value for all);
        it defaults to now.
        """
        items = np.asarray(items)
        if items.ndim == 1 and not isinstance(time_ns, np.ndarray):
            return self._publish_one(items, time.monotonic_ns() if time_ns is None else time_ns)
        capacity = self._ring.spec.capacity
        items = items.reshape(-1, self._ring.spec.item_len)
        stamps = time.monotonic_ns() if time_ns is None else np.asarray(time_ns, np.int64)
        first = self._next
        if len(items) <= capacity:
            self._publish(items, stamps)
            return first
        stamps = np.broadcast_to(stamps, len(items))
        for at in range(0, len(items), capacity):
            self._publish(items[at:at + capacity], stamps[at:at + capacity])
        return first

    def _publish_one(self, item: np.ndarray, stamp: int) -> int:
        """The capture callback's case, one block per call: no slicing or wrap-around."""
        n = self._claim(1)
        slot = n % self._ring.spec.capacity
        self._ring._data[slot] = item
        self._ring._stamps[slot] = stamp
        self._commit(n + 1)
        return n

    def _publish(self, items: np.ndarray, stamps: int | np.ndarray) -> None:
        ring, k = self._ring, len(items)
        capacity = ring.spec.capacity
        n = self._claim(k)
        start = n % capacity
        if start + k <= capacity:
            ring._data[start:start + k] = items
            ring._stamps[start:start + k] = stamps
        else:
            head = capacity - start
            whole = np.ndim(stamps) == 0
            ring._data[start:] = items[:head]
            ring._data[:k - head] = items[head:]
            ring._stamps[start:] = stamps if whole else stamps[:head]
            ring._stamps[:k - head] = stamps if whole else stamps[head:]
        self._commit(n + k)

    def _claim(self, k: int) -> int:
        """Announce the slots about to be overwritten (first half of the protocol); returns n."""
        n = self._next
        # A writer that died mid-write left `claimed` ahead; it must never move back.
        if n + k > self._claimed:
            self._claimed = n + k
        self._ring._words[_CLAIMED_W] = self._claimed
        _fence_release()
        return n

    def _commit(self, end: int) -> None:
        """Make the written items visible (second half of the protocol) and wake sleepers."""
        words = self._ring._words
        _fence_release()
        words[_PUBLISHED_W] = end
        self._next = end
        if words[_SLEEPERS_W] and _futex_wake is not None:
            _futex_wake(self._ring._segment.buf, _FUTEX_OFFSET)


class RingReader:
    """One reader's cursor over a ring.

    With a ``slot`` the cursor is also stored in the ring, so a restarted reader resumes
    where it stopped and a replay source can pace itself to its slowest reader.
    Without a ``start`` it begins at the slot's stored cursor, else at the newest item.
    Without ``announces_reads`` the slot holds only what ``hold`` announces: a reader whose
    work on the items it read is not done when it reads them (the mel actor's VAD, which
    has not announced the speech it began to hear) keeps them for its successor.
    """

    def __init__(self, ring: Ring, slot: int | None = None, start: int | None = None,
                 spin_s: float = 0.0003, max_sleep_s: float = 0.004, announces_reads: bool = True) -> None:
        if slot is not None and not 0 <= slot < ring.spec.max_readers:
            raise ValueError(f"reader slot {slot} outside 0..{ring.spec.max_readers - 1}")
        self._ring = ring
        self._slot_word = None if slot is None else _FIRST_READER_W + slot * _LINE
        stored = -1 if self._slot_word is None else ring._words[self._slot_word]
        if start is None:
            start = stored if stored >= 0 else ring.published
        self.position = start
        self.overruns = 0
        self._unreported_lost = 0
        self._sleeper: ThreadPoolExecutor | None = None
        self._spin_s = spin_s
        self._max_sleep_s = max_sleep_s
        self._announces_reads = announces_reads
        self._announce()

    def available(self) -> int:
        return max(0, self._ring.published - self.position)

    def read(self, max_items: int | None = None) -> Batch | None:
        """Copy out what is published from the cursor on (at most ``max_items``), or None.

        Items lost to an overrun are counted in ``overruns`` at once and reported in the
        ``lost`` of the next batch, so ``batch.seq - batch.lost`` is always the previous end.
        """
        lost = 0
        while True:
            before = self.position
            batch, lost_now, self.position = self._ring._copy(self.position, max_items)
            lost += lost_now
            if batch is not None or self.position == before:
                break
        if batch is not None:
            batch = batch._replace(lost=self._unreported_lost + lost)
        self.overruns += lost
        self._unreported_lost = 0 if batch else self._unreported_lost + lost
        if self._announces_reads:
            self._announce()
        return batch

    async def wait(self, timeout: float | None = None, until: int | None = None) -> bool:
        """Wait until an item is available (``until``: until the ring has published that
        many items, e.g. the last frame a pass needs); False on timeout."""
        until = self.position + 1 if until is None else until
        ring = self._ring
        if ring.published >= until:
            return True
        loop = asyncio.get_running_loop()
        now = loop.time()
        deadline = None if timeout is None else now + timeout
        spin_until = now + self._spin_s
        sleep = 0.0
        while ring.published < until:
            now = loop.time()
            if deadline is not None and now >= deadline:
                return False
            if now < spin_until:
                await asyncio.sleep(0)
            elif _futex_wait is not None:
                await self._sleep_until_published(loop, deadline, until)
            else:
                sleep = min(self._max_sleep_s, max(0.001, sleep * 2))
                await asyncio.sleep(sleep if deadline is None else min(sleep, deadline - now))
        return True

    async def _sleep_until_published(self, loop, deadline: float | None, until: int) -> None:
        ring = self._ring
        ring._words[_SLEEPERS_W] = 1
        seen = ring._words[_PUBLISHED_W]
        if seen >= until:
            return
        if self._sleeper is None:
            self._sleeper = ThreadPoolExecutor(1, thread_name_prefix=f"ring-wait-{ring.spec.name}")
        limit = 0.05 if deadline is None else max(0.0, min(0.05, deadline - loop.time()))
        await loop.run_in_executor(self._sleeper, _futex_wait, ring._segment.buf,
                                   _FUTEX_OFFSET, seen & 0xFFFFFFFF, limit)

    def _announce(self) -> None:
        if self._slot_word is not None:
            self._ring._words[self._slot_word] = self.position

    def hold(self, position: int | None) -> None:
        """Announce ``position`` as the oldest item this reader still needs, without
        reading (None: it needs none): a reader that reads by ``Ring.get`` holds back a
        writer that paces itself to its readers, as the final actor holds the mel actor."""
        if self._slot_word is not None:
            self._ring._words[self._slot_word] = -1 if position is None else position

    def release_slot(self) -> None:
        """Stop announcing a cursor: a replay source no longer paces itself to this reader."""
        if self._slot_word is not None:
            self._ring._words[self._slot_word] = -1
