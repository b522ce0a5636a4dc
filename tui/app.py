"""The monitor: both sources' spectrograms and levels, their text side by side, and the
models' state.

Why the app runs in the supervisor's process: the supervisor already receives every
message, and the rings can be read from any process, so the monitor needs no protocol of
its own and adds no hop between an actor and the screen. It cannot slow the pipeline:
actors are other processes that never wait for the supervisor; drawing happens at a fixed
frame rate from ring reads; and Textual writes to the terminal from its own thread, so a
slow terminal delays only the picture.

``MonitorApp(config)`` runs the pipeline; ``MonitorApp(config, pipeline=False)`` shows only
what ``handle`` and the spectrograms' ``push`` are given (snapshot tests, demos).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from multiprocessing import resource_tracker

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Static

from earwig.config import Config
from earwig.messages import (SOURCES, ActorFailed, AnyMessage, Final, Level, ModelState, Partial, Source,
                             SourceEnded)
from earwig.tui.spectrogram import Spectrogram
from earwig.tui.status import StatusBar
from earwig.tui.transcript import TranscriptColumn

#: How often new mel frames are read from the rings and drawn.
FRAME_RATE = 12.5
TITLES = {"mic": "Mic", "speakers": "Speakers"}


class MonitorApp(App):
    CSS = """
    #sources { height: auto; }
    .source { width: 1fr; height: auto; }
    .level { height: 1; }
    #columns { height: 1fr; }
    """
    BINDINGS = [Binding("c", "clear", "Clear"), Binding("q", "quit", "Quit")]

    def __init__(self, config: Config, pipeline: bool = True) -> None:
        super().__init__()
        if pipeline:
            # multiprocessing's resource tracker starts with the first shared-memory segment
            # and hands its child our stderr's descriptor; while the app runs, stderr is
            # Textual's capture (no descriptor), so it is started now, before the app.
            resource_tracker.ensure_running()
        self.config = config
        self.sources: list[Source] = [s for s in SOURCES if config.source(s).enabled]
        self.spectrograms = {s: Spectrogram(id=f"spectrogram-{s}") for s in self.sources}
        self.levels = {s: Static(f"{TITLES[s]}: waiting", classes="level") for s in self.sources}
        self.columns = {s: TranscriptColumn(TITLES[s], id=f"column-{s}") for s in self.sources}
        self.status = StatusBar()
        self._pipeline = pipeline
        #: Set to end the pipeline (pending Finals come first); the app exits after it.
        self._stop = asyncio.Event()
        self.pipeline_done = asyncio.Event()
        #: When a source's sample was captured (monotonic ns), from its PCM ring's stamps.
        self._captured_ns: Callable[[Source, int], int | None] = lambda source, sample: None

    def compose(self) -> ComposeResult:
        with Horizontal(id="sources"):
            for source in self.sources:
                with Vertical(classes="source"):
                    yield self.levels[source]
                    yield self.spectrograms[source]
        with Horizontal(id="columns"):
            yield from self.columns.values()
        yield self.status
        yield Footer()

    def on_mount(self) -> None:
        if self._pipeline:
            self.run_worker(self._run_pipeline(), exclusive=True)

    # --- receive -------------------------------------------------------------------------

    async def _run_pipeline(self) -> None:
        from earwig.actors.mel_frames import bins_for_model
        from earwig.compute import final_model
        from earwig.shm import segments
        from earwig.supervisor.plan import mel_ring_name, pcm_ring_name, transcription_plan
        from earwig.supervisor.supervisor import Supervisor

        prefix = segments.run_prefix()
        plan = transcription_plan(self.config, prefix)
        bins = bins_for_model(final_model(self.config.models.final))
        async with Supervisor(plan.rings, plan.actors) as supervisor:
            messages = supervisor.subscribe()
            readers = {s: supervisor.rings[mel_ring_name(prefix, s, bins)].reader()
                       for s in plan.sources}

            def draw() -> None:
                for source, reader in readers.items():
                    batch = reader.read()
                    if batch is not None:
                        self.spectrograms[source].push(batch.data)

            def captured_ns(source: Source, sample: int) -> int | None:
                pcm = supervisor.rings[pcm_ring_name(prefix, source)]
                batch = pcm.reader(start=sample // pcm.spec.item_len).read(1)
                return None if batch is None else int(batch.time_ns[0])

            self._captured_ns = captured_ns
            timer = self.set_interval(1 / FRAME_RATE, draw)
            stopping = asyncio.create_task(self._stop.wait())
            try:
                while not self._stop.is_set():
                    getting = asyncio.create_task(messages.get())
                    await asyncio.wait((getting, stopping), return_when=asyncio.FIRST_COMPLETED)
                    if getting.done():
                        self.handle(getting.result())
                    else:
                        getting.cancel()
            finally:  # nothing may still point into the rings when they are closed
                timer.stop()
                readers.clear()
                self._captured_ns = lambda source, sample: None
        self.pipeline_done.set()
        self.exit()

    def handle(self, message: AnyMessage) -> None:
        """Show what a pipeline message says."""
        if isinstance(message, Partial):
            self.columns[message.source].show_partial(message)
        elif isinstance(message, Final):
            self.columns[message.source].add_final(message)
            captured = self._captured_ns(message.source, message.end)
            if captured is not None and message.text:
                self.status.final_after_s = (time.monotonic_ns() - captured) / 1e9
        elif isinstance(message, Level):
            self.levels[message.source].update(_meter(TITLES[message.source], message))
        elif isinstance(message, ModelState):
            self.status.show_model(message)
        elif isinstance(message, SourceEnded):
            self.levels[message.source].update(f"{TITLES[message.source]}: replay ended")
        elif isinstance(message, ActorFailed):
            self.notify(f"{message.error}" + (f" ({message.fix})" if message.fix else ""),
                        severity="error" if message.fatal else "warning", timeout=10)

    # --- actions -------------------------------------------------------------------------

    async def action_quit(self) -> None:
        """Stop the pipeline (its actors end, its rings go) before the screen closes."""
        if self._pipeline:
            self._stop.set()
        else:
            self.exit()

    def action_clear(self) -> None:
        for column in self.columns.values():
            column.clear()


def _meter(title: str, level: Level) -> str:
    """A bar of the source's level from -60 dB to 0 dB, and CLIP when it clipped."""
    filled = level.meter_cells(24)
    clip = " [bold red]CLIP[/]" if level.clipped else ""
    return f"{title:<9}[green]{'█' * filled}[/][dim]{'·' * (24 - filled)}[/] {level.rms_db:6.1f} dB{clip}"
