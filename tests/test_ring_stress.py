"""The ring across real processes: a fast writer, a tiny ring, readers checking every item.

A torn read (an item half-overwritten while copied) would show as a row whose words do not
all encode the same sequence number; an accounting error as delivered + lost != written.
For its first LOCKSTEP items the writer waits for both readers after every write (of at most
the ring's capacity), so each reader delivers at least that many whatever the machine's load;
then it runs free and the readers are overrun.
"""

import multiprocessing as mp

import numpy as np
import pytest

from earwig.shm import Ring, RingSpec

pytestmark = pytest.mark.pipeline

ITEMS = 1_100_000
LOCKSTEP = 2_000
ITEM_LEN = 64


def encode(seqs: np.ndarray) -> np.ndarray:
    rows = np.repeat(seqs[:, None], ITEM_LEN, axis=1)
    rows[:, -1] = ~seqs  # a checksum word that differs from the rest
    return rows


def read_all(name, ready, done, results, progress):
    ring = Ring.attach(name)
    reader = ring.reader(start=0)
    ready.set()
    delivered = lost = corrupt = gaps = 0
    position = 0
    while True:
        batch = reader.read()
        if batch is None:
            if done.is_set() and reader.position >= ring.published:
                break
            continue
        seqs = np.arange(batch.seq, batch.end, dtype=np.int64)
        corrupt += int((batch.data != encode(seqs)).any(axis=1).sum())
        corrupt += int((batch.time_ns != seqs).sum())
        gaps += batch.seq - batch.lost != position
        position = batch.end
        delivered += len(seqs)
        lost += batch.lost
        progress.value = position
    ring.close()
    results.put((delivered, lost, corrupt, gaps, reader.overruns))


def test_no_torn_item_and_exact_accounting_across_processes(ring_prefix):
    ctx = mp.get_context("spawn")
    ring = Ring.create(RingSpec(f"{ring_prefix}stress", capacity=4, item_len=ITEM_LEN, dtype="int64"))
    done, results = ctx.Event(), ctx.Queue()
    readers, progress = [], [ctx.RawValue("q", 0) for _ in range(2)]
    for at in range(2):
        ready = ctx.Event()
        proc = ctx.Process(target=read_all, args=(ring.spec.name, ready, done, results, progress[at]))
        proc.start()
        assert ready.wait(60)
        readers.append(proc)
    try:
        writer = ring.writer()
        sizes = np.random.default_rng(1).integers(1, 6, size=ITEMS)
        seq = 0
        for size in sizes:
            lockstep = seq < LOCKSTEP
            size = min(int(size), ITEMS - seq, ring.spec.capacity if lockstep else ITEMS)
            if size <= 0:
                break
            seqs = np.arange(seq, seq + size, dtype=np.int64)
            writer.write(encode(seqs), time_ns=seqs)
            seq += size
            while lockstep and min(p.value for p in progress) < seq:
                pass  # each reader has read this write before the next
        done.set()
        outcomes = [results.get(timeout=120) for _ in readers]
    finally:
        for proc in readers:
            proc.join(30)
        ring.close()
        ring.unlink()
    assert seq == ITEMS
    for delivered, lost, corrupt, gaps, overruns in outcomes:
        assert corrupt == 0
        assert gaps == 0
        assert lost <= overruns
        assert delivered + overruns == ITEMS
        assert delivered >= LOCKSTEP  # the lockstep's items at least: a reader that saw nothing fails
