"""``earwig profile``, the recording: the real pipeline on live devices or replayed files,
every message it publishes with the moment it arrived, and four times a second the fill of
every ring and the CPU and memory of every process.

Why the supervisor runs in this process (under the monitor it has one of its own): the
recorder reads the rings' fill and the capture stamps directly, and nothing draws a screen
here, so nothing competes with routing for the event loop. The moment a message reaches
the recorder is its "delivered" stamp, as drawing it is under the monitor.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from earwig import paths
from earwig.config import Config
from earwig.errors import EarwigError
from earwig.messages import AnyMessage, SpeechStart
from earwig.profiling.process_usage import ProcessUsage
from earwig.session.keeper import Keeping, SessionKeeper
from earwig.shm import segments
from earwig.supervisor.following import RunEnd, drain, follow
from earwig.supervisor.plan import Plan, pcm_ring_name, transcription_plan, with_what_can_run
from earwig.supervisor.stop_signals import StopSignals
from earwig.supervisor.supervisor import Supervisor

SAMPLE_EVERY_S = 0.25
#: The name this process goes by in the figures (it runs the supervisor).
SUPERVISOR = "supervisor"


@dataclass
class Sample:
    at_ns: int
    #: Items written and not yet read by the slowest reader that announces its place.
    ring_fill: dict[str, int]
    cpu_percent: dict[str, float]
    rss_bytes: dict[str, int]
    #: Device-wide GPU memory in use and utilisation (NVML), when there is a GPU.
    gpu: dict[str, float] | None = None


@dataclass
class Recording:
    config: Config
    plan: Plan
    started_ns: int
    ended_ns: int = 0
    #: (when it reached the recorder, the message), in order.
    messages: list[tuple[int, AnyMessage]] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    #: Capture time of the first voiced sample of each utterance, by (source, start): the
    #: onset that "onset -> first Partial" counts from (SpeechStart's start is ``lead_ms``
    #: earlier, padding included).
    onsets_ns: dict[tuple[str, int], int] = field(default_factory=dict)
    ring_capacity: dict[str, int] = field(default_factory=dict)


async def record(config: Config, seconds: float, warn: Callable[[str], None] = lambda problem: None) -> Recording:
    """Run until ``seconds`` have passed (0: until every replay has ended and every utterance
    has its Final), or Ctrl-C. A source that cannot be had is left out (``warn`` says why)."""
    prefix = segments.run_prefix()
    plan = with_what_can_run(transcription_plan(config, prefix, devices_optional=True), warn)
    recording = Recording(config, plan, started_ns=time.monotonic_ns())
    stop = asyncio.Event()
    end = RunEnd(replays_only=bool(plan.sources) and all(config.source(s).replay for s in plan.sources))
    with StopSignals(stop):
        async with Supervisor(plan.rings, plan.actors, log_path=paths.fresh_log("profile.log"),
                              keeper=SessionKeeper(Keeping(echo_filter=plan.echo.on))) as supervisor:
            messages = supervisor.subscribe()
            pcm = {source: supervisor.rings[pcm_ring_name(prefix, source)] for source in plan.sources}
            recording.ring_capacity = {name: ring.spec.capacity for name, ring in supervisor.rings.items()}
            sampler = _Sampler(supervisor, [spec.name for spec in plan.actors])
            if not seconds and not end.replays_only:
                warn("profile: live devices: Ctrl-C ends the run (or give --seconds N)")

            def keep(message: AnyMessage) -> None:
                recording.messages.append((time.monotonic_ns(), message))
                if isinstance(message, SpeechStart):
                    recording.onsets_ns[message.source, message.start] = pcm[message.source].stamp_ns(
                        config.vad.onset(message.start)) or 0

            await follow(supervisor, messages, keep, stop, end, seconds=seconds,
                         tick=lambda: recording.samples.append(sampler.sample()), tick_every_s=SAMPLE_EVERY_S)
            recording.ended_ns = time.monotonic_ns()
            if end.failure:
                raise EarwigError(end.failure.error, end.failure.fix)
        drain(messages, keep)  # what it published while it shut down: the Finals it still owed
    return recording


class _Sampler:
    """Ring fill (the rings' headers) and per-process CPU and memory (``ProcessUsage``)."""

    def __init__(self, supervisor: Supervisor, actors: list[str]) -> None:
        self._supervisor, self._actors = supervisor, actors
        self._usage = ProcessUsage()
        self._nvml = _nvml_device()

    def sample(self) -> Sample:
        fill = {}
        for name, ring in self._supervisor.rings.items():
            cursors = ring.reader_cursors()
            fill[name] = ring.published - min(cursors) if cursors else 0
        cpu, rss = {}, {}
        for name, pid in [(SUPERVISOR, os.getpid()), *((a, self._supervisor.pid(a)) for a in self._actors)]:
            usage = self._usage.read(pid) if pid is not None else None
            if usage is not None:
                cpu[name], rss[name] = usage
        return Sample(time.monotonic_ns(), fill, cpu, rss, self._gpu())

    def _gpu(self) -> dict[str, float] | None:
        if self._nvml is None:
            return None
        import pynvml

        memory = pynvml.nvmlDeviceGetMemoryInfo(self._nvml)
        return {"memory_used_bytes": float(memory.used),
                "utilization_percent": float(pynvml.nvmlDeviceGetUtilizationRates(self._nvml).gpu)}


def _nvml_device():
    """The first GPU through NVML (no CUDA context is made in this process), or None: no
    GPU, or no ``nvidia-ml-py`` installed."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        return pynvml.nvmlDeviceGetHandleByIndex(0)
    except pynvml.NVMLError:  # no driver, no device
        return None
