"""Dictation's decisions, event by event: when a dictation begins and ends, when its text is
complete, what is typed, held, retried, and what the user is told.

Why a class of its own: the states (ready, listening, transcribing, held, off) and what moves
between them (a key, a command, a Final, the mel actor's DictationSpan, a delivery's
outcome, a crashed predecessor's unfinished dictation) are the tricky part of dictation.
Here they take events with the values they need (the mic's ring position, the time, the
focused window) and return effects; the actor (``actors/dictation``) does the I/O: it reads
the ring and the focus, publishes, types on a thread, and answers ``earwig ctl``.

A dictation is the mic's audio between the key's press and its release (or two presses, or
``earwig ctl start`` / ``stop``). The mel actor bounds the utterance there and says how many
utterances it closed inside (``DictationSpan``); once that many Finals have come, the text
is complete.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Union

from earwig.actors.dictation_text import dictated, joined
from earwig.actors.final_context import said_before
from earwig.config import DictationConfig
from earwig.messages import (DictationAction, DictationSpan, DictationStart, DictationState, DictationStop, Final,
                             Message, Retry)

#: What dictation says once a replayed mic has no audio left.
MIC_ENDED = "the mic's replay has ended: there is no audio left to dictate from"


@dataclass(frozen=True)
class Publish:
    """Tell the pipeline and the screen."""

    message: Message


@dataclass(frozen=True)
class Deliver:
    """Type ``text`` into ``window`` (None: the window is not known; hold it on the
    clipboard), then report the outcome (``DictationMachine.delivered``)."""

    text: str
    window: int | None
    finals: tuple[Final, ...]


@dataclass(frozen=True)
class Clipboard:
    """Put ``text`` on the clipboard (a retried text, held)."""

    text: str


@dataclass(frozen=True)
class Answer:
    """The state a waiting ``earwig ctl stop`` / ``retry`` is answered with."""

    state: DictationState


Effect = Union[Publish, Deliver, Clipboard, Answer]


@dataclass
class _Dictation:
    start: int
    #: The window focused when it began; None: not known (begun by a predecessor that
    #: crashed): the text goes to the clipboard.
    window: int | None
    end: int | None = None
    cancel: bool = False
    #: How many utterances the mel actor closed inside it (known once it said so).
    utterances: int | None = None
    finals: list[Final] = field(default_factory=list)


class DictationMachine:
    """One dictation at a time. Each event returns the effects to carry out, in order."""

    def __init__(self, settings: DictationConfig, hotkey: bool, desktop: bool) -> None:
        """``hotkey``: a hotkey is read (else only commands start and stop); ``desktop``:
        there is a desktop to type into and a clipboard (else the text is only published)."""
        self._settings = settings
        self._hotkey = hotkey
        self._desktop = desktop
        self._current: _Dictation | None = None
        self.state = DictationState(state="ready")
        #: The last text typed: into which window, when; the next one may continue it.
        self._last: tuple[int | None, str, float] | None = None
        #: False while the user turned the hotkey off (the monitor's d key).
        self._enabled = True
        #: The Finals of the text held last (not typed), which ``retry`` reads again.
        self.held: list[Final] = []
        #: A retry in flight: each held Final's span, and its revision once it came.
        self._retrying: dict[tuple[int, int], Final | None] = {}
        self._mic_ended = False

    # --- what the user does ---------------------------------------------------------------

    @property
    def listening(self) -> bool:
        return self._current is not None and self._current.end is None

    def would_begin(self, action: DictationAction | Literal["key_down"]) -> bool:
        """Whether ``action`` begins a dictation now (the actor then reads the focused window
        to pass to ``begin``)."""
        if self._current is not None or self._mic_ended:
            return False
        if action == "key_down":
            return self._enabled
        return action in ("start", "toggle")

    def ready(self) -> list[Effect]:
        """The mic runs: dictation can begin."""
        return self._set("ready", self.ready_detail())

    def key_down(self, position: int, window: int | None) -> list[Effect]:
        if not self._enabled:
            return []
        if self._settings.mode == "hold" or self._current is None:
            return self.begin(position, window)
        return self.end(position)

    def key_up(self, position: int) -> list[Effect]:
        if self._settings.mode == "hold" and self._enabled:
            return self.end(position)
        return []

    def command(self, action: DictationAction, position: int, window: int | None) -> tuple[list[Effect], bool]:
        """What ``earwig ctl`` or the monitor asks, and whether the answer waits for an
        ``Answer`` effect (``stop``: once the text is out); else the answer is ``state``."""
        if action == "start" or (action == "toggle" and not self.listening):
            return self.begin(position, window), False
        if action in ("stop", "toggle") and self.listening:
            return self.end(position), True
        if action == "cancel" and self.listening:
            return self.end(position, cancel=True), False
        if action in ("enable", "disable"):
            self._enabled = action == "enable"
            return (self._set("ready", self.ready_detail()) if self._enabled
                    else self._set("off", "the hotkey is off")), False
        return [], False

    def retry(self, audio_kept: bool) -> tuple[list[Effect], DictationState | None]:
        """Read the held text's audio again; ``audio_kept``: the mic's ring still holds it.
        The answer: a failed state now, or None (an ``Answer`` comes with the revisions)."""
        if not self.held:
            return [], DictationState(state="failed", detail="no held text to retry: only text that was not typed "
                                                              "(focus moved) is held")
        if not audio_kept:
            return [], DictationState(state="failed", detail="the held text's audio has left the mic's ring "
                                                              "(ring_seconds): it can no longer be retried")
        self._retrying = {(f.start, f.end): None for f in self.held}
        effects: list[Effect] = [Publish(Retry(source="mic", start=f.start, end=f.end, prompt=said_before(self.held, f)))
                                 for f in self.held]
        return effects + self._set("transcribing", "retrying the held text"), None

    def begin(self, position: int, window: int | None) -> list[Effect]:
        if self._current is not None:
            return []  # one at a time: a press while the last one is still being typed waits for none
        if self._mic_ended:
            return self._set("failed", MIC_ENDED)
        self._current = _Dictation(start=position, window=window)
        return [Publish(DictationStart(start=position)), *self._set("listening")]

    def end(self, position: int, cancel: bool = False) -> list[Effect]:
        current = self._current
        if current is None or current.end is not None:
            return []
        current.end, current.cancel = position, cancel
        return [Publish(DictationStop(start=current.start, end=position, cancel=cancel)),
                *self._set("ready" if cancel else "transcribing")]

    # --- what the pipeline says -----------------------------------------------------------

    def resume(self, message: DictationStart | DictationStop, position: int) -> list[Effect]:
        """A dictation this actor's crashed predecessor began and did not finish, re-sent by
        the supervisor: end it now. Its text is still made, and held on the clipboard,
        since the window it was meant for is not known."""
        current = self._current
        if isinstance(message, DictationStart) and current is None:
            self._current = _Dictation(start=message.start, window=None)
            return self.end(position)
        if isinstance(message, DictationStop) and current is not None and current.start == message.start:
            current.cancel = message.cancel  # the user's own stop came before the crash
        return []

    def heard(self, final: Final, now: float) -> list[Effect]:
        """A mic Final: part of the dictation it falls in, or a retry's revision."""
        if final.revised:
            return self._revised(final)
        current = self._current
        if current is not None and final.end > current.start and (current.end is None or final.start < current.end):
            current.finals.append(final)
            return self._finish_if_complete(now)
        return []

    def closed(self, span: DictationSpan, now: float) -> list[Effect]:
        if self._current is not None and span.start == self._current.start:
            self._current.utterances = span.utterances
            return self._finish_if_complete(now)
        return []

    def mic_ended(self) -> list[Effect]:
        """A replayed mic's file is at its end: the dictation in progress ends with it (the
        mel actor closes its utterance there), and a new one cannot begin."""
        self._mic_ended = True
        return self._set("off", MIC_ENDED) if self._current is None else []

    def delivered(self, deliver: Deliver, held: str, now: float) -> list[Effect]:
        """How ``deliver`` went: typed (``held`` ""), or held on the clipboard, and why."""
        if not held:
            self._last = (deliver.window, deliver.text, now)
            return self._settle(DictationState(state="delivered", text=deliver.text))
        self.held = list(deliver.finals)
        return self._settle(DictationState(state="held", detail=held, text=deliver.text))

    # --- decisions ------------------------------------------------------------------------

    def ready_detail(self) -> str:
        if not self._hotkey:
            return "no hotkey: `earwig ctl toggle` starts and stops"
        if self._settings.mode == "hold":
            return f"hold {self._settings.hotkey} and speak"
        return f"press {self._settings.hotkey}, speak, press it again"

    def _finish_if_complete(self, now: float) -> list[Effect]:
        current = self._current
        if current is None or current.utterances is None or len(current.finals) < current.utterances:
            return []
        self._current = None
        if current.cancel:
            return self._settle(DictationState(state="ready", detail="cancelled"))
        text = dictated(current.finals, self._settings.replacements)
        if not text.strip():
            return self._settle(DictationState(state="delivered", detail="no speech was heard: nothing to type"))
        last = self._last
        if last and current.window is not None and last[0] == current.window and now - last[2] < self._settings.join_within_s:
            text = joined(text, last[1])
        return [Deliver(text, current.window, tuple(current.finals))]

    def _revised(self, final: Final) -> list[Effect]:
        if (final.start, final.end) not in self._retrying:
            return []
        self._retrying[final.start, final.end] = final
        if any(revision is None for revision in self._retrying.values()):
            return []
        self.held, self._retrying = [f for f in self._retrying.values() if f is not None], {}
        text = dictated(self.held, self._settings.replacements)
        if not self._desktop:
            return self._settle(DictationState(state="held", text=text, detail="retried"))
        return [Clipboard(text), *self._settle(DictationState(
            state="held", text=text, detail="retried: the new text is on the clipboard (paste it with ctrl+v)"))]

    def _set(self, phase: str, detail: str = "") -> list[Effect]:
        self.state = DictationState(state=phase, detail=detail)  # type: ignore[arg-type]
        return [Publish(self.state)]

    def _settle(self, state: DictationState) -> list[Effect]:
        self.state = state
        return [Publish(state), Answer(state)]
