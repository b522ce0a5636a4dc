"""The monitor's session without a screen: what it holds, and what each pipeline message and
each of the user's keys means for it.

Why apart from the widgets: the screen's decisions (which lines the session keeps for save,
what a retry's revision replaces and whether the selection follows it, when a meter says a
device went away, which line a search finds next, whether a retry must load its model first)
are the monitor's logic, and they are tested here message by message, without Textual. The
app (``tui/app``) hands every message to ``heard`` and shows the effects it returns; the
widgets keep their own state (a column its lines, the status bar its fields).

``PipelineLife`` is the pipeline's lifecycle as the screen sees it: none (the screen alone,
for snapshots), starting, running, ending, ended.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Union

from earwig import session_search
from earwig.export import TITLES, clock
from earwig.messages import (ActorFailed, ActorReady, AnyMessage, DictationCommand, DictationState, EchoState, Final,
                             Level, ModelState, Partial, PauseSource, ServerState, Source, SourceEnded, SourceState,
                             Stats)


@dataclass(frozen=True)
class Notice:
    """A toast: ``severity`` as Textual's notify takes it."""

    text: str
    severity: Literal["information", "warning", "error"] = "information"
    timeout: float = 4.0


@dataclass(frozen=True)
class Line:
    """A Final for its column: a new line (and the status bar: who wrote it, how late), or a
    retry's text in the place of its line (``final.revised``)."""

    final: Final


@dataclass(frozen=True)
class MeterSays:
    """A source's meter shows words instead of a level; ``notice``: in the warning colour."""

    source: Source
    text: str
    notice: bool = False


@dataclass(frozen=True)
class StatusShows:
    """A model's, the echo canceller's or the server's state, or dictation's, for the status bar."""

    state: ModelState | EchoState | ServerState | DictationState


Effect = Union[Notice, Line, MeterSays, StatusShows]


@dataclass(frozen=True)
class Found:
    """The line a search found, and how many lines have the words."""

    line: Final
    index: int
    of: int


class MonitorModel:
    """Every pipeline message to ``heard``; the user's keys to their methods."""

    def __init__(self) -> None:
        #: Every Final of the session, in arrival order: what save writes (clear only
        #: empties the screen).
        self.finals: list[Final] = []
        #: The Final the user selected (click, or up/down in a column): what copy, play and
        #: retry take.
        self.selected: Final | None = None
        self.paused: set[Source] = set()
        self.disconnected: set[Source] = set()
        #: Each model role's last state; dictation's phase ("off" until it says).
        self.models: dict[str, ModelState] = {}
        self.dictation = "off"
        #: The processes the profiling panel samples (from ActorReady), and their counters.
        self.pids: dict[str, int | None] = {}
        self.counters: dict[str, dict[str, float]] = {}
        #: What changed since the last frame: drawn together at the frame rate, so the
        #: screen repaints a dozen times a second however fast levels and Partials come.
        self.levels: dict[Source, Level] = {}
        self.partials: dict[Source, Partial] = {}
        #: The line a search found last: the next search goes on from there.
        self._found: Final | None = None

    def heard(self, message: AnyMessage) -> list[Effect]:
        handler = _HANDLERS.get(type(message))
        return handler(self, message) if handler is not None else []

    # --- the pipeline's messages ----------------------------------------------------------

    def _partial(self, partial: Partial) -> list[Effect]:
        self.partials[partial.source] = partial
        return []

    def _final(self, final: Final) -> list[Effect]:
        if final.echo:
            return []  # the speakers heard in the mic: in the session log, not on screen
        if final.revised:
            return self._revision(final)
        if final.text:
            self.finals.append(final)
        self.partials.pop(final.source, None)
        return [Line(final)]

    def _revision(self, final: Final) -> list[Effect]:
        """A retry's text takes its line's place: in the session (what save writes), in its
        column, and as the selection."""
        before = next((f for f in self.finals if (f.source, f.start, f.end) == (final.source, final.start, final.end)),
                      None)
        self.finals = [final if f is before else f for f in self.finals]
        if self.selected is not None and self.selected is before:
            self.selected = final
        same = before is not None and before.text == final.text
        said = "the same text" if same else final.text or "(no speech)"
        return [Line(final), Notice(f"Retried {clock(final.start)}: {said}", timeout=6)]

    def _level(self, level: Level) -> list[Effect]:
        if level.source not in self.paused and level.source not in self.disconnected:
            self.levels[level.source] = level
        return []

    def _model(self, state: ModelState) -> list[Effect]:
        self.models[state.role] = state
        return [StatusShows(state)]

    def _status(self, state: EchoState | ServerState) -> list[Effect]:
        return [StatusShows(state)]

    def _connection(self, state: SourceState) -> list[Effect]:
        """A device that went away keeps its column (what it said stays); the meter says so
        until the device is back."""
        (self.disconnected.discard if state.connected else self.disconnected.add)(state.source)
        self.levels.pop(state.source, None)
        if state.connected:
            return [MeterSays(state.source, "reconnected")]
        return [MeterSays(state.source, "disconnected: waiting for it to come back", notice=True),
                Notice(f"{TITLES[state.source]} disconnected ({state.detail})", "warning", 10)]

    def _ended(self, ended: SourceEnded) -> list[Effect]:
        self.levels.pop(ended.source, None)
        return [MeterSays(ended.source, "replay ended")]

    def _dictation(self, state: DictationState) -> list[Effect]:
        self.dictation = state.state
        held = [Notice(f"Dictation: {state.detail}", "warning", 10)] if state.state == "held" else []
        return [StatusShows(state), *held]

    def _ready(self, ready: ActorReady) -> list[Effect]:
        self.pids[ready.actor] = ready.pid
        return []

    def _stats(self, stats: Stats) -> list[Effect]:
        self.counters.setdefault(stats.actor, {}).update(stats.counters)
        return []

    def _failed(self, failure: ActorFailed) -> list[Effect]:
        return [Notice(failure.error + (f" ({failure.fix})" if failure.fix else ""),
                       "error" if failure.fatal else "warning", 10)]

    # --- the user's keys -----------------------------------------------------------------

    def frame(self) -> tuple[dict[Source, Level], dict[Source, Partial]]:
        """The newest level and Partial of each source since the last frame (earlier ones
        are simply never drawn)."""
        levels, partials = self.levels, self.partials
        self.levels, self.partials = {}, {}
        return levels, partials

    def pause(self, source: Source) -> tuple[PauseSource, MeterSays]:
        """Pause or resume a source: a device's ring takes silence, a replay holds its place."""
        paused = source not in self.paused
        (self.paused.add if paused else self.paused.discard)(source)
        self.levels.pop(source, None)
        return (PauseSource(source=source, paused=paused),
                MeterSays(source, "paused (m/s resumes)" if paused else "resumed", notice=paused))

    def search(self, query: str) -> Found | Notice | None:
        """The newest line with every word asked for, older than the last one found (from
        the newest again once none is left); it becomes the selection."""
        wanted = set(session_search.words_of(query))
        if not wanted:
            return None
        found = sorted((f for f in self.finals if session_search.matches(f, wanted)), key=lambda f: (f.start, f.source))
        if not found:
            return Notice(f"No line of this session has {query!r}", "warning")
        last = self._found
        older = [f for f in found if last is None or (f.start, f.source) < (last.start, last.source)]
        line = (older or found)[-1]
        self._found = line
        return Found(line, found.index(line), len(found))

    def search_changed(self) -> None:
        """The query was edited: the next search starts from the newest line again."""
        self._found = None

    def copied(self) -> Final | None:
        """What copy takes: the selected Final, else the newest."""
        return self.selected if self.selected is not None else (self.finals or [None])[-1]

    def retry_loads_first(self, retry_model: str) -> bool:
        """Whether a retry must load its model before it reads (it is not the ready one)."""
        state = self.models.get("retry" if "retry" in self.models else "final")
        return not (state is not None and state.state == "ready" and state.model == retry_model)

    def dictation_toggled(self) -> DictationCommand:
        """The d key: the hotkey off (it is ignored, and free for other uses), or on again."""
        return DictationCommand(action="enable" if self.dictation == "off" else "disable")


_HANDLERS = {Partial: MonitorModel._partial, Final: MonitorModel._final, Level: MonitorModel._level,
             ModelState: MonitorModel._model, EchoState: MonitorModel._status, ServerState: MonitorModel._status,
             SourceState: MonitorModel._connection, SourceEnded: MonitorModel._ended,
             DictationState: MonitorModel._dictation, ActorReady: MonitorModel._ready, Stats: MonitorModel._stats,
             ActorFailed: MonitorModel._failed}


class PipelineLife:
    """The pipeline's lifecycle as the screen sees it. ``none``: the screen alone (snapshot
    tests, demos); ``starting``: the supervisor's process is being started; ``running``:
    the rings and the supervisor can be reached; ``ending``: q was pressed (the Finals
    owed still come); ``ended``."""

    def __init__(self, pipeline: bool) -> None:
        self.state: Literal["none", "starting", "running", "ending", "ended"] = "starting" if pipeline else "none"

    @property
    def running(self) -> bool:
        return self.state == "running"

    def began(self) -> bool:
        """The supervisor runs: False when q came first (it is to be stopped at once)."""
        if self.state == "starting":
            self.state = "running"
        return self.state == "running"

    def end(self) -> Literal["exit", "stop", "wait"]:
        """q: ``exit`` the screen (no pipeline, or it has ended), ``stop`` the running
        pipeline, or ``wait`` (it is starting, or already ending)."""
        if self.state in ("none", "ended"):
            return "exit"
        was, self.state = self.state, "ending"
        return "stop" if was == "running" else "wait"

    def ended(self) -> None:
        self.state = "ended"
