"""The monitor: both sources' spectrograms and levels, their text side by side, and the
models' state.

Why the screen is a client of the supervisor, in a process of its own: it can then run at a
lower priority than the pipeline (``monitor.niceness``). On two cores the final model's
pass uses both, and a frame drawn meanwhile would stall it; at nice 10 the kernel hands the
pipeline the cores whenever it wants them and the picture waits (``bench monitor``,
profiling/README.md). The supervisor's messages come over one pipe
(``earwig.supervisor.remote``); the spectrograms and capture stamps are read from the rings
directly, at a fixed frame rate. A slow terminal delays only the picture: Textual writes
from its own thread, and the supervisor sends from its own. The actors' output goes to a
log file in the state dir: the terminal is the screen's.

A source whose device cannot be had (no audio server) says so in its column, with the fix,
and the other source runs on.

What the session holds and what each message means for it is ``tui/session_model``'s
(``MonitorModel``, tested message by message); this module shows its effects, runs the
pipeline's lifecycle (``PipelineLife``), and reaches the running pipeline through one
``PipelineLink`` (its rings and its supervisor).

``MonitorApp(config)`` runs the pipeline; ``MonitorApp(config, pipeline=False)`` shows only
what ``handle`` and the spectrograms' ``push`` are given (snapshot tests, demos).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from datetime import datetime
from multiprocessing import resource_tracker
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import psutil
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Input

from earwig import export, paths, playback
from earwig.config import SAMPLE_RATE, Config
from earwig.errors import EarwigError
from earwig.export import TITLES
from earwig.messages import (SOURCES, AnyMessage, DictationState, EchoState, Final, Message, ModelState, PlayedBack,
                             Retry, ServerState, Shutdown, Source, SpeechStart)
from earwig.session.log import audio_path
from earwig.tui.level import NOTICE, LevelMeter
from earwig.tui.profiling import Latencies, ProfilingPanel
from earwig.tui.session_model import Effect, Found, Line, MeterSays, MonitorModel, Notice, PipelineLife, StatusShows
from earwig.tui.spectrogram import Spectrogram
from earwig.tui.status import StatusBar
from earwig.tui.transcript import TranscriptColumn

if TYPE_CHECKING:
    from earwig.shm import Ring, RingReader
    from earwig.supervisor.plan import Plan
    from earwig.supervisor.remote import RemoteSupervisor

#: How often the profiling panel samples the processes.
PROFILING_EVERY_S = 1.0
#: A line played back is heard by the speakers' loopback within this much more than its
#: length: the output's and the loopback's buffering, the VAD's hangover.
PLAYBACK_HEARD_WITHIN_S = 1.5


def lower_priority(niceness: int) -> None:
    """Add ``niceness`` to this process's nice value. On Linux a nice value belongs to a
    thread, and Textual's threads already run, so each one is lowered."""
    if not niceness:
        return
    if sys.platform != "linux":
        os.nice(niceness)
        return
    for thread in psutil.Process().threads():
        try:
            current = os.getpriority(os.PRIO_PROCESS, thread.id)
            os.setpriority(os.PRIO_PROCESS, thread.id, min(19, current + niceness))
        except ProcessLookupError:
            pass  # it ended meanwhile


class PipelineLink:
    """The running pipeline as the screen reaches it: the rings it reads (the spectrograms'
    frames, the capture stamps, a line's audio) and the supervisor it tells what the user
    asks for. Made once the supervisor runs, closed before its rings are."""

    def __init__(self, supervisor: RemoteSupervisor, mel: dict[Source, RingReader], pcm: dict[Source, Ring]) -> None:
        self.supervisor = supervisor
        self._mel, self._pcm = mel, pcm

    def frames(self) -> list[tuple[Source, np.ndarray]]:
        """Each source's mel frames since the last call."""
        return [(source, batch.data) for source, reader in self._mel.items() if (batch := reader.read()) is not None]

    def captured_ns(self, source: Source, sample: int) -> int | None:
        """When a source's sample was captured (monotonic ns), from its PCM ring's stamps."""
        return self._pcm[source].stamp_ns(sample)

    def samples(self, source: Source, start: int, end: int) -> np.ndarray | None:
        """A source's samples ``start..end`` while its PCM ring holds them."""
        return self._pcm[source].samples(start, end)

    def taken(self, source: Source) -> int:
        """How many samples the source's ring has taken so far."""
        ring = self._pcm[source]
        return ring.published * ring.spec.item_len

    def close(self) -> None:
        self._mel.clear()
        self._pcm.clear()


class MonitorApp(App):
    CSS = """
    #sources { height: auto; }
    .source { width: 1fr; height: auto; }
    #columns { height: 1fr; }
    ProfilingPanel { display: none; }
    ProfilingPanel.-shown { display: block; }
    #search { display: none; dock: bottom; }
    #search.-shown { display: block; }
    """
    BINDINGS = [Binding("m", "pause('mic')", "Pause mic"), Binding("s", "pause('speakers')", "Pause spk"),
                Binding("v", "view", "View"),
                Binding("enter", "play", "Play"), Binding("r", "retry", "Retry"),
                Binding("slash", "search", "Find"), Binding("escape", "close_search", show=False),
                Binding("c", "clear", "Clear"), Binding("y", "copy", "Copy"), Binding("w", "save", "Save"),
                Binding("p", "profiling", "Profiling"), Binding("d", "dictation", "Dictation"),
                Binding("q", "quit", "Quit")]

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
        self.levels = {s: LevelMeter(TITLES[s]) for s in self.sources}
        self.columns = {s: TranscriptColumn(TITLES[s], config.monitor.column_finals, id=f"column-{s}")
                        for s in self.sources}
        self.status = StatusBar()
        #: ``/``: words to find in the session's text; enter finds the next older line.
        self.search = Input(placeholder="Find words in this session (enter: next, escape: close)", id="search",
                            disabled=True)  # hidden: it must not take the focus (and the keys)
        self.profiling = ProfilingPanel(classes="-shown" if config.monitor.profiling_panel else "")
        self.model = MonitorModel()
        self.model.pids["monitor"] = os.getpid()
        self.life = PipelineLife(pipeline)
        #: The running pipeline's rings and supervisor (None before and after it runs).
        self.link: PipelineLink | None = None
        self.started = datetime.now()
        #: Whether this session runs dictation (``dictation.in_monitor``, and it can run).
        self.dictating = False
        #: Set by q: a pipeline that is still starting stops as soon as it runs.
        self._quit = asyncio.Event()
        self.pipeline_done = asyncio.Event()
        #: The session log (and the session's audio beside it), once the pipeline runs.
        self.session_log: Path | None = None
        #: The model a retry reads with, once the pipeline runs.
        self.retry_model = ""
        #: Plays a line again (``enter``); made when the pipeline starts (PortAudio starts
        #: with it, not on the first key).
        self._player: playback.Player | None = None
        self.latencies = Latencies()

    @property
    def session(self) -> list[Final]:
        """Every Final of the session shown so far (what save writes)."""
        return self.model.finals

    @property
    def selected(self) -> Final | None:
        return self.model.selected

    @selected.setter
    def selected(self, final: Final | None) -> None:
        self.model.selected = final

    def compose(self) -> ComposeResult:
        with Horizontal(id="sources"):
            for source in self.sources:
                with Vertical(classes="source"):
                    yield self.levels[source]
                    yield self.spectrograms[source]
        yield self.profiling
        with Horizontal(id="columns"):
            yield from self.columns.values()
        yield self.status
        yield self.search
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.set_interval(1 / self.config.monitor.frame_rate, self.draw_frame)
        self.set_interval(PROFILING_EVERY_S, self._sample_processes)
        if self.life.state == "starting":
            self.run_worker(self._run_pipeline(), exclusive=True)

    # --- receive -------------------------------------------------------------------------

    async def _run_pipeline(self) -> None:
        from earwig.audio.log_mel import bins_for_model
        from earwig.compute import final_model
        from earwig.session.keeper import Keeping
        from earwig.session.log import new_session_path
        from earwig.shm import segments
        from earwig.supervisor.plan import (mel_ring_name, pcm_ring_name, retry_model, session_audio_rings,
                                            transcription_plan)
        from earwig.supervisor.remote import SUPERVISOR, RemoteSupervisor

        prefix = segments.run_prefix()
        plan = self._with_dictation(transcription_plan(self.config, prefix, devices_optional=True), prefix)
        for source, error in plan.unavailable.items():
            self.show_unavailable(source, error)
        if self.config.server.url:
            self.status.engine = f"[yellow]audio sent to[/] {self.config.server.url}"
        if plan.echo.problem:
            self.notify(plan.echo.problem, severity="warning", timeout=10)
        elif plan.echo.on:
            self.status.echo = "echo cancel on"
        if not plan.sources:  # nothing to run; the screen still says why, until q
            await self._quit.wait()
            self._pipeline_ended()
            return
        bins = bins_for_model(final_model(self.config.models.final))
        self.retry_model = retry_model(self.config.models)
        try:
            self.session_log = new_session_path()
            keeping = Keeping(log=self.session_log, audio=session_audio_rings(plan, prefix),
                              audio_after_session=self.config.keep_audio, echo_filter=plan.echo.on)
            async with RemoteSupervisor(plan.rings, plan.actors, paths.fresh_log("actors.log"),
                                        keeping=keeping) as supervisor:
                lower_priority(self.config.monitor.niceness)
                self.model.pids[SUPERVISOR] = supervisor.pid
                self._player = playback.Player()
                self.link = PipelineLink(
                    supervisor, {s: supervisor.rings[mel_ring_name(prefix, s, bins)].reader() for s in plan.sources},
                    {s: supervisor.rings[pcm_ring_name(prefix, s)] for s in plan.sources})
                try:
                    await self._follow(supervisor)
                finally:  # nothing may still point into the rings when they are closed
                    link, self.link = self.link, None
                    link.close()
        except EarwigError as error:
            self.life.ended()
            self.exit(message=f"earwig: {error}", return_code=2)
            return
        self._pipeline_ended()

    def _pipeline_ended(self) -> None:
        self.life.ended()
        self.pipeline_done.set()
        self.exit()

    def _with_dictation(self, plan: Plan, prefix: str) -> Plan:
        """The plan with the dictation actor, where dictation can run: the mic is on, there
        is a hotkey to read (an X display, or keyboards on Wayland), and no ``earwig dictate``
        holds the socket."""
        from earwig.actors import dictation_control
        from earwig.actors.dictation_desktops import session_desktop
        from earwig.actors.dictation_keys import parse
        from earwig.supervisor.plan import with_dictation

        if not self.config.dictation.in_monitor or "mic" not in plan.sources:
            return plan
        path = dictation_control.socket_path()
        hotkey = self.config.dictation.hotkey
        try:
            desktop = session_desktop(hotkey, self.config.dictation.type_without_focus_check)
            if not desktop.hotkey:  # no X here, no keyboard to read (SSH, a container): nothing to say on every start
                self.status.dictation = "unavailable"
                return plan
            if desktop.hotkey == "pynput":
                parse(hotkey)
            dictation_control.ensure_free(path)
        except EarwigError as error:
            self.status.dictation = "unavailable"
            self.notify(f"No dictation: {error.problem} ({error.fix})", severity="warning", timeout=10)
            return plan
        self.dictating = True
        self.status.dictation_via = desktop.typing()
        return with_dictation(plan, self.config, prefix, str(path), desktop)

    async def _follow(self, supervisor: RemoteSupervisor) -> None:
        """Show what the supervisor publishes until it has ended (q asks it to)."""
        if not self.life.began():
            supervisor.stop()
        while (message := await supervisor.receive()) is not None:
            self.handle(message)

    def handle(self, message: AnyMessage) -> None:
        """Show what a pipeline message says."""
        if isinstance(message, SpeechStart):
            self.latencies.speech_started(message, self._captured_ns(message.source,
                                                                     self.config.vad.onset(message.start)))
        for effect in self.model.heard(message):
            self._show(effect)

    def _show(self, effect: Effect) -> None:
        if isinstance(effect, Line) and effect.final.revised:
            self.columns[effect.final.source].revise(effect.final)
        elif isinstance(effect, Line):
            final = effect.final
            self.status.show_writer(final)
            self.columns[final.source].add_final(final)
            self.latencies.shown(final, time.monotonic_ns())
            captured = self._captured_ns(final.source, final.end)
            if captured is not None and final.text:
                self.status.final_after_s = (time.monotonic_ns() - captured) / 1e9
        elif isinstance(effect, MeterSays):
            self.levels[effect.source].say(effect.text, NOTICE if effect.notice else None)
        elif isinstance(effect, Notice):
            self.notify(effect.text, severity=effect.severity, timeout=effect.timeout)
        elif isinstance(effect, StatusShows):
            self._status_shows(effect.state)

    def _status_shows(self, state: ModelState | EchoState | ServerState | DictationState) -> None:
        if isinstance(state, ModelState):
            self.status.show_model(state)
        elif isinstance(state, EchoState):
            self.status.show_echo(state)
        elif isinstance(state, ServerState):
            self.status.show_server(state)
        else:
            self.status.dictation = state.state

    def show_unavailable(self, source: Source, error: EarwigError) -> None:
        self.columns[source].show_problem(f"No {TITLES[source].lower()} audio: {error.problem}."
                                          + (f"\nFix: {error.fix}." if error.fix else ""))
        self.levels[source].say("unavailable", NOTICE)

    def draw_frame(self) -> None:
        """What changed since the last frame, onto the screen: new mel frames, the latest
        level and Partial of each source."""
        if self.link is not None:
            for source, frames in self.link.frames():
                self.spectrograms[source].push(frames)
        levels, partials = self.model.frame()
        for source, level in levels.items():
            self.levels[source].show(level)
        for source, partial in partials.items():
            self.columns[source].show_partial(partial)
            self.latencies.shown(partial, time.monotonic_ns())

    def on_transcript_column_selected(self, event: TranscriptColumn.Selected) -> None:
        """One Final is selected on the whole screen: the other column's selection goes."""
        self.model.selected = event.final
        for column in self.columns.values():
            if column is not event.column:
                column.unselect()

    def _captured_ns(self, source: Source, sample: int) -> int | None:
        return self.link.captured_ns(source, sample) if self.link is not None else None

    def _ring_samples(self, source: Source, start: int, end: int) -> np.ndarray | None:
        return self.link.samples(source, start, end) if self.link is not None else None

    def _tell(self, message: Message) -> None:
        """What the user asks for, to the pipeline (nothing without one)."""
        if self.link is not None:
            self.link.supervisor.tell(message)

    # --- actions -------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Source keys only for the sources on screen."""
        if action == "pause":
            return parameters[0] in self.sources
        if action == "dictation":
            return self.dictating
        if action == "close_search":
            return self.search.has_class("-shown")
        return True

    async def action_quit(self) -> None:
        self.end_pipeline()

    def end_pipeline(self) -> None:
        """Stop the pipeline (its actors end, its rings go; what it publishes meanwhile is
        still shown); the screen closes after it. Without a pipeline, the screen closes."""
        self._quit.set()
        step = self.life.end()
        if step == "exit":
            self.exit()
        elif step == "stop":
            self._tell(Shutdown())

    def action_pause(self, source: Source) -> None:
        """Pause or resume a source: a device's ring takes silence, a replay holds its place."""
        told, says = self.model.pause(source)
        self._tell(told)
        self._show(says)

    def action_view(self) -> None:
        """Both columns, then each alone (the other is muted: hidden, its text still kept
        and saved), then both again."""
        views = [self.sources] + ([[s] for s in self.sources] if len(self.sources) > 1 else [])
        shown = [s for s in self.sources if self.columns[s].display]
        following = views[(views.index(shown) + 1) % len(views)] if shown in views else self.sources
        for source, column in self.columns.items():
            column.display = source in following
        self.notify("Showing " + " and ".join(TITLES[s] for s in following), timeout=2)

    def action_play(self) -> None:
        """Play the selected line's audio again, as it was captured: from its ring while the
        ring holds it, else from the session's audio. The speakers' loopback hears it: their
        Finals over that span are marked as the playback (``PlayedBack``), not shown."""
        final = self.model.selected
        if final is None:
            self.notify("Select a line first (click it, or up/down in its column), then enter",
                        severity="warning", timeout=4)
            return
        audio = self._ring_samples(final.source, final.start, final.end)
        try:
            if self._player is None or self.session_log is None:
                raise EarwigError("nothing can be played", "lines play while the pipeline runs")
            if audio is None:
                audio = playback.line_audio(self.session_log, final)
            self._player.play(audio)
        except EarwigError as error:
            self.notify(str(error), severity="warning", timeout=8)
            return
        if "speakers" in self.sources and not self.config.speakers.replay and self.link is not None:
            taken = self.link.taken("speakers")
            self._tell(PlayedBack(source="speakers", start=taken,
                                  end=taken + len(audio) + int(PLAYBACK_HEARD_WITHIN_S * SAMPLE_RATE)))
        self.notify(f"Playing {len(audio) / SAMPLE_RATE:.1f} s: {final.text}", timeout=3)

    def action_retry(self) -> None:
        """Transcribe the selected line again, more carefully (``actors/final_retry``): its
        text on screen is replaced when the new one comes."""
        from earwig.actors.final_context import said_before  # with the decoder: not for the screen's start

        final = self.model.selected
        if final is None:
            self.notify("Select a line first (click it, or up/down in its column), then r",
                        severity="warning", timeout=4)
            return
        if self.session_log is None:
            self.notify("Lines are retried while the pipeline runs", severity="warning", timeout=4)
            return
        kept = self._ring_samples(final.source, final.start, final.end) is not None
        audio = str(audio_path(self.session_log, final.source))
        self._tell(Retry(source=final.source, start=final.start, end=final.end,
                         prompt=said_before(self.model.finals, final), audio=audio))
        loading = f"; {self.retry_model} loads first" if self.model.retry_loads_first(self.retry_model) else ""
        self.notify(f"Retrying {export.clock(final.start)} with {self.retry_model}, beam search"
                    + ("" if kept else ", from the session's audio") + loading, timeout=4)

    def action_search(self) -> None:
        self.search.disabled = False
        self.search.add_class("-shown")
        self.search.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """The newest line with every word asked for, older than the last one found;
        selected and scrolled to."""
        found = self.model.search(event.value)
        if not isinstance(found, Found):
            if found is not None:
                self._show(found)
            return
        line = found.line
        if not self.columns[line.source].show_line(line):
            self.notify(f"{export.clock(line.start)}: {line.text} (cleared from the screen; "
                        "the saved transcript has it)", timeout=6)
            return
        self.notify(f"{found.index + 1} of {found.of} lines have it: enter for the next, "
                    "escape to close", timeout=4)

    def on_input_changed(self, event: Input.Changed) -> None:
        self.model.search_changed()

    def action_close_search(self) -> None:
        self.search.remove_class("-shown")
        self.search.disabled = True
        self.search.value = ""
        selected = self.model.selected
        column = self.columns[selected.source] if selected is not None else None
        (column or next(iter(self.columns.values()))).focus()

    def action_clear(self) -> None:
        """Empty the columns; the session transcript (what save writes) keeps everything."""
        for column in self.columns.values():
            column.clear()
        self.model.selected = None

    def action_copy(self) -> None:
        """The selected Final (click one), else the newest, to the clipboard (through the
        terminal, OSC 52: it works over SSH, and in tmux with set-clipboard on)."""
        final = self.model.copied()
        if final is None:
            self.notify("Nothing to copy yet", severity="warning")
            return
        self.copy_to_clipboard(final.text)
        self.notify(f"Copied: {final.text}", timeout=3)

    def action_save(self) -> None:
        folder = Path(self.config.monitor.transcripts or paths.data_dir() / "transcripts").expanduser()
        try:
            path = export.save_text(self.model.finals, self.started, folder)
        except OSError as error:
            self.notify(f"Could not save the transcript: {error}. The text stays on screen; "
                        "set monitor.transcripts to a writable folder", severity="error", timeout=10)
            return
        self.notify(f"Saved {len(self.model.finals)} Finals to {path}", timeout=5)

    def action_dictation(self) -> None:
        """Turn the dictation hotkey off (it is ignored, so it can be used for something
        else meanwhile) and on again."""
        self._tell(self.model.dictation_toggled())

    def action_profiling(self) -> None:
        self.profiling.toggle_class("-shown")
        self._sample_processes()

    def _sample_processes(self) -> None:
        if self.profiling.has_class("-shown"):
            self.profiling.sample(self.model.pids, self.model.counters, self.latencies)
