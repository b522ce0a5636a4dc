"""What the monitor costs: the screen's CPU at its frame rate while both sources run, and
end-of-speech -> Final latency with the screen on and off, in the same run.

Each run is a fresh process on a pseudo-terminal of 120x40 (a real terminal driver writes
every frame; this process drains it as a terminal would), both sources replaying the same
speech in real time through the whole pipeline. "on" runs ``MonitorApp`` as ``earwig
monitor`` does (the screen at ``monitor.niceness``, the supervisor in a process of its own);
"off" runs the same supervisor's process with a client that only reads the messages. The
runs alternate (on, off, on, off, ...) so drift on a shared machine falls on both alike. The
screen's own cost is the client process's CPU with the screen minus without it.

Latency here: from the capture of a Final's last sample (its stamp in the PCM ring) to the
Final reaching the client's process, for every Final of the run but each source's first
(that one waited for the models to load).
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

import numpy as np
import psutil

from earwig.config import Config, SourceConfig
from earwig.messages import SOURCES, AnyMessage, Final, SpeechEnd, Stats
from earwig.profiling.bench.latency import build
from earwig.profiling.report import table

COLUMNS, ROWS = 120, 40


class Tracker:
    """Counts what the run waits for and times each Final, the same way in both modes. A
    source has ended once the mel actor has read it to its end (its Stats say so)."""

    def __init__(self, sources: int, captured_ns) -> None:
        self.sources = sources
        self.captured_ns = captured_ns
        self.ended: set[str] = set()
        self.speech_ends = self.finals = 0
        self.firsts: set[str] = set()
        self.latency_s: list[float] = []

    def see(self, message: AnyMessage) -> None:
        if isinstance(message, SpeechEnd):
            self.speech_ends += 1
        elif isinstance(message, Final):
            self.finals += 1
            captured = self.captured_ns(message.source, message.end - 1)
            if message.text and message.heard and captured is not None:
                if message.source in self.firsts:
                    self.latency_s.append((time.monotonic_ns() - captured) / 1e9)
                self.firsts.add(message.source)
        elif isinstance(message, Stats):
            self.ended.update(s for s in SOURCES if message.counters.get(f"{s}_read_to_end"))

    @property
    def done(self) -> bool:
        return len(self.ended) == self.sources and self.finals >= self.speech_ends


def _config(path: Path) -> Config:
    return Config(mic=SourceConfig(replay=str(path)), speakers=SourceConfig(replay=str(path)))


def child(mode: str, path: Path, out: Path) -> None:
    """One run, in this process: the monitor ("on") or the bare pipeline ("off")."""
    config = _config(path)
    import earwig.supervisor.plan, earwig.supervisor.remote, earwig.tui.app  # noqa: F401 (imports are not the screen's cost)
    cpu_before = psutil.Process().cpu_times()
    started = time.monotonic()
    tracker = asyncio.run(_with_screen(config) if mode == "on" else _without_screen(config))
    cpu_after = psutil.Process().cpu_times()
    cpu_s = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
    out.write_text(json.dumps({"cpu_s": cpu_s, "wall_s": time.monotonic() - started,
                               "latency_s": tracker.latency_s}))


async def _with_screen(config: Config) -> Tracker:
    from earwig.tui.app import MonitorApp

    app = MonitorApp(config)
    tracker = Tracker(2, lambda source, sample: app._captured_ns(source, sample))
    shown = app.handle

    def handle(message: AnyMessage) -> None:
        tracker.see(message)
        shown(message)
        if tracker.done:
            app.end_pipeline()

    app.handle = handle
    await app.run_async()
    return tracker


async def _without_screen(config: Config) -> Tracker:
    from earwig.shm import segments
    from earwig.supervisor.plan import pcm_ring_name, transcription_plan
    from earwig.supervisor.remote import RemoteSupervisor

    prefix = segments.run_prefix()
    plan = transcription_plan(config, prefix)
    async with RemoteSupervisor(plan.rings, plan.actors) as supervisor:
        tracker = Tracker(2, lambda source, sample: (
            supervisor.rings[pcm_ring_name(prefix, source)].stamp_ns(sample)))
        while not tracker.done:
            message = await supervisor.receive()
            if message is None:
                raise RuntimeError("the supervisor's process ended before the replays did")
            tracker.see(message)
    return tracker


def _run_on_a_terminal(mode: str, path: Path, folder: Path) -> dict:
    """A child process whose stdin, stdout and stderr are a 120x40 pseudo-terminal."""
    out = folder / f"{mode}-{time.monotonic_ns()}.json"
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLORTERM": "truecolor"}
    process = subprocess.Popen([sys.executable, "-m", "earwig.profiling.bench.monitor", mode, str(path), str(out)],
                               stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    drained = threading.Thread(target=_drain, args=(master,), daemon=True)
    drained.start()
    code = process.wait(timeout=900)
    os.close(master)
    if code != 0 or not out.exists():
        raise RuntimeError(f"the {mode} run exited with {code}")
    return json.loads(out.read_text())


def _drain(master: int) -> None:
    try:
        while os.read(master, 65536):
            pass
    except OSError:
        pass


def run(quick: bool = False) -> str:
    with tempfile.TemporaryDirectory() as folder:
        path, utterances = build(Path(folder), 2 if quick else 8, real_speech=not quick)
        order = ["on", "off"] * (1 if quick else 2)
        runs = [(mode, _run_on_a_terminal(mode, path, Path(folder))) for mode in order]
    by_mode = {mode: [r for m, r in runs if m == mode] for mode in ("on", "off")}
    core = {mode: [100 * r["cpu_s"] / r["wall_s"] for r in rs] for mode, rs in by_mode.items()}
    latency = {mode: [x for r in rs for x in r["latency_s"]] for mode, rs in by_mode.items()}
    on, off = np.mean(core["on"]), np.mean(core["off"])
    p50 = {mode: float(np.percentile(v, 50)) for mode, v in latency.items()}
    p95 = {mode: float(np.percentile(v, 95)) for mode, v in latency.items()}
    # Noise: how far apart two runs of the same mode land (needs two of each).
    spread = [abs(np.percentile(rs[0]["latency_s"], 50) - np.percentile(rs[1]["latency_s"], 50))
              for rs in by_mode.values() if len(rs) > 1]
    noise = f"{max(spread):.2f}" if spread else "n/a (--quick: one run each)"
    lines = [f"monitor: both sources replaying {len(utterances)} utterances each in real time, "
             f"{COLUMNS}x{ROWS} pseudo-terminal, runs {', '.join(order)}, {psutil.cpu_count()} cores"]
    lines += table(("", "screen on", "screen off", "on - off / on vs off", "goal"), [
        ("client process CPU, % of one core", f"{on:.1f}", f"{off:.1f}", f"{on - off:.1f}", "<= 10"),
        ("end of speech -> Final p50 s", f"{p50['on']:.2f}", f"{p50['off']:.2f}",
         f"{p50['on'] / p50['off']:.2f}x", "within noise"),
        ("end of speech -> Final p95 s", f"{p95['on']:.2f}", f"{p95['off']:.2f}",
         f"{p95['on'] / p95['off']:.2f}x", ""),
        ("Finals timed", str(len(latency["on"])), str(len(latency["off"])), "", ""),
    ])
    lines.append(f"noise: p50 of two runs of the same mode differ by up to {noise} s")
    return "\n".join(lines)


if __name__ == "__main__":
    child(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))
