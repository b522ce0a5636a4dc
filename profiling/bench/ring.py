"""Ring vs multiprocessing.Queue: 512-sample float32 blocks between two processes.

Throughput: the writer sends as fast as it can, one block per call (as a capture callback
would); the reader takes everything. Hop latency: the writer sends one block every
``interval`` and stamps it; the reader (the ring's asyncio ``wait()``, the Queue's blocking
``get()``) measures how long after the stamp it holds the block. Two paces: 5 kHz (a busy
reader, inside the ring's spin window) and 100 Hz (10 ms audio blocks, where the ring
reader sleeps on its futex between blocks). Writers pace themselves with sleep(), not a
busy loop, which would starve the Queue's feeder thread of the GIL.
"""

from __future__ import annotations

import multiprocessing as mp
import time

import numpy as np

from earwig.profiling.report import table
from earwig.shm import Ring, RingSpec, segments

BLOCK = 512
_CTX = mp.get_context("spawn")


def _pace(interval_s: float, due: float) -> float:
    """Sleep (releasing the GIL, so the Queue's feeder thread runs) until ``due``."""
    ahead = due - time.perf_counter()
    if ahead > 0:
        time.sleep(ahead)
    return due + interval_s


# --- ring ------------------------------------------------------------------------------------


def _ring_writer(name: str, count: int, interval_s: float, go) -> None:
    ring = Ring.attach(name)
    writer, block = ring.writer(), np.random.default_rng(0).random(BLOCK, np.float32)
    go.wait()
    due = time.perf_counter()
    for _ in range(count):
        if interval_s:
            due = _pace(interval_s, due)
        writer.write(block, time.monotonic_ns())
    ring.close()


def _ring_reader(name: str, count: int, ready, results) -> None:
    async def consume():
        ring = Ring.attach(name)
        reader = ring.reader(start=0)
        ready.set()
        got, latencies = 0, []
        while got < count:
            await reader.wait()
            batch = reader.read()
            now = time.monotonic_ns()
            got += len(batch.data) + batch.lost
            latencies.extend((now - batch.time_ns).tolist())
        results.put((time.monotonic_ns(), reader.overruns, latencies))
        ring.close()

    import uvloop
    uvloop.run(consume())


def _run_ring(count: int, interval_s: float) -> tuple[float, int, np.ndarray]:
    spec = RingSpec(f"{segments.run_prefix()}bench", capacity=8192, item_len=BLOCK)
    ring = Ring.create(spec)
    try:
        return _race(count, _ring_reader, (spec.name, count), _ring_writer, (spec.name, count, interval_s))
    finally:
        ring.close()
        ring.unlink()


# --- multiprocessing.Queue ---------------------------------------------------------------------


def _queue_writer(queue, count: int, interval_s: float, go) -> None:
    block = np.random.default_rng(0).random(BLOCK, np.float32)
    go.wait()
    due = time.perf_counter()
    for _ in range(count):
        if interval_s:
            due = _pace(interval_s, due)
        queue.put((time.monotonic_ns(), block))


def _queue_reader(queue, count: int, ready, results) -> None:
    ready.set()
    latencies = []
    for _ in range(count):
        stamp, _block = queue.get()
        latencies.append(time.monotonic_ns() - stamp)
    results.put((time.monotonic_ns(), 0, latencies))


def _run_queue(count: int, interval_s: float) -> tuple[float, int, np.ndarray]:
    queue = _CTX.Queue()
    return _race(count, _queue_reader, (queue, count), _queue_writer, (queue, count, interval_s))


def _race(count, reader, reader_args, writer, writer_args) -> tuple[float, int, np.ndarray]:
    """Start reader and writer processes, release the writer, and collect the reader's
    finish time, lost items and latencies (ms); returns (items/s, lost, latencies)."""
    ready, go, results = _CTX.Event(), _CTX.Event(), _CTX.Queue()
    processes = [_CTX.Process(target=reader, args=(*reader_args, ready, results)),
                 _CTX.Process(target=writer, args=(*writer_args, go))]
    for process in processes:
        process.start()
    ready.wait()
    time.sleep(0.2)
    started = time.monotonic_ns()
    go.set()
    finished, lost, latencies = results.get(timeout=300)
    for process in processes:
        process.join()
    return count / ((finished - started) / 1e9), lost, np.array(latencies) / 1e6


# --- report -------------------------------------------------------------------------------------


def run(quick: bool = False) -> str:
    throughput_n = 20_000 if quick else 300_000
    paced = [(5000.0, 2_000 if quick else 20_000), (100.0, 100 if quick else 1_000)]
    rows = []
    queue_rate, _, _ = _run_queue(throughput_n, 0.0)
    ring_rate, ring_lost, _ = _run_ring(throughput_n, 0.0)
    rows.append(("throughput (blocks/s)", f"{queue_rate:,.0f}", f"{ring_rate:,.0f}",
                 f"{ring_rate / queue_rate:.1f}x", ">= 10x"))
    for rate, n in paced:
        _, _, queue_lat = _run_queue(n, 1 / rate)
        _, lost, ring_lat = _run_ring(n, 1 / rate)
        ring_lost += lost
        for label, q in (("p50", 50), ("p99", 99)):
            qv, rv = np.percentile(queue_lat, q), np.percentile(ring_lat, q)
            goal = "< 0.2 ms" if label == "p99" else ""
            rows.append((f"hop {label} @ {rate:,.0f} blocks/s (ms)", f"{qv:.3f}", f"{rv:.3f}",
                         f"{qv / rv:.1f}x faster", goal))
    lines = [f"ring vs multiprocessing.Queue: {BLOCK} x float32 blocks between two processes, "
             f"same run ({throughput_n:,} blocks for throughput)"]
    lines += table(("", "mp.Queue", "ring", "ring vs Queue", "goal"), rows)
    lines.append(f"ring items lost to overrun: {ring_lost}")
    return "\n".join(lines)
