"""The dictation actor: a hotkey or a command in, the final model's text typed into the
window that had focus.

receive  the hotkey (``dictation_keys``, pynput on its own thread), DictationCommand (the
         monitor's key, or ``earwig ctl`` over the control socket), and from the pipeline
         the mic's Finals and the mel actor's DictationSpan
compute  a dictation is the mic's audio between the key's press and its release: the mel
         actor bounds the utterance there (the VAD only trims silence), the final model
         transcribes it; its Finals, with spoken replacements and joined to the text typed
         into the same window before (``dictation_text``), are the text
publish  DictationStart / DictationStop (the mel actor and the final model act on them),
         DictationState (the screen, ``earwig ctl``, the command's output); the text into
         the focused window (``dictation_delivery``), never into one that took focus meanwhile;
         Retry for each Final of held text (``earwig ctl retry``): the revised text is held
         on the clipboard instead

Where the sample positions come from: the mic's PCM ring. The key's press and release are
the ring's write position at that moment, the same clock the VAD and the models count in.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from earwig.actors import dictation_control
from earwig.actors.dictation_delivery import ON_THE_CLIPBOARD, Desktop, Outcome
from earwig.actors.dictation_desktops import DesktopChoice
from earwig.actors.dictation_keys import Hotkey
from earwig.actors.dictation_text import dictated, joined
from earwig.actors.final_context import said_before
from earwig.actors.runtime import Actor
from earwig.config import DictationConfig
from earwig.errors import EarwigError
from earwig.messages import (DictationAction, DictationCommand, DictationSpan, DictationStart, DictationState,
                             DictationStop, Final, Retry, SourceEnded)
from earwig.shm import Ring


#: How long "ready" waits for the mic's first audio (a device's stream can take a second or
#: two to deliver its first block: a dictation started before would lose its first words).
MIC_WAIT_S = 10.0

#: What dictation says once a replayed mic has no audio left.
MIC_ENDED = "the mic's replay has ended: there is no audio left to dictate from"

#: The mic's Finals, the mel actor's word that a dictation's utterance is closed, commands
#: from the monitor's key; DictationStart / DictationStop too: the supervisor re-sends an
#: unfinished dictation's to a restarted dictation actor, which finishes it (``Dictator.resume``);
#: SourceEnded: a replayed mic has no more audio to dictate from.
LISTENS = (Final, DictationSpan, DictationCommand, DictationStart, DictationStop, SourceEnded)


@dataclass(frozen=True)
class DictationParams:
    settings: DictationConfig
    #: The mic's PCM ring: where the key's press and release fall in the audio.
    pcm_ring: str
    #: The control socket's path, for ``earwig ctl``.
    socket: str
    #: Where the text goes (``dictation_desktops``): X11, Wayland, or none (no hotkey, no
    #: typing; ``earwig ctl`` still works and the text is only published: the command prints it).
    desktop: DesktopChoice = DesktopChoice("x11", focus="x11", hotkey=True)


@dataclass
class _Dictation:
    start: int
    #: None: not known (begun by a predecessor that crashed): the text goes to the clipboard.
    window: int | None
    end: int | None = None
    cancel: bool = False
    #: How many utterances the mel actor closed inside it (known once it answered).
    utterances: int | None = None
    finals: list[Final] = field(default_factory=list)


async def main(actor: Actor) -> None:
    params: DictationParams = actor.params
    loop = asyncio.get_running_loop()
    dictation = Dictator(actor, params)
    hotkey = None
    if params.desktop.hotkey:
        hotkey = Hotkey(params.settings.hotkey, loop, dictation.key_down, dictation.key_up)
        await asyncio.to_thread(hotkey.start)
    server = await dictation_control.serve(Path(params.socket), dictation.command)
    await dictation.mic_running(MIC_WAIT_S)
    dictation.publish_state("ready", dictation.ready_detail(hotkey is not None))
    handlers = {DictationCommand: lambda m: dictation.command(m.action),
                Final: lambda m: dictation.heard(m) if m.source == "mic" else None,
                DictationSpan: dictation.closed, DictationStart: dictation.resume, DictationStop: dictation.resume,
                SourceEnded: lambda m: dictation.mic_ended() if m.source == "mic" else None}
    try:
        await actor.serve(handlers, actor.stopping.wait())
        while not actor.control.empty():  # what came before the Shutdown: the last Finals
            message = actor.control.get_nowait()
            if isinstance(message, (Final, DictationSpan)):
                handlers[type(message)](message)
        await dictation.delivered()
    finally:
        server.close()
        if hotkey is not None:
            hotkey.stop()
        Path(params.socket).unlink(missing_ok=True)
        dictation.close()


# --- compute ------------------------------------------------------------------------------


def _open_desktop(choice: DesktopChoice, settings: DictationConfig):
    """The desktop the text is typed into, as ``choice`` found it; None: the text is printed."""
    if choice.kind == "x11":
        return Desktop(settings.delivery)
    if choice.kind == "wayland":
        from earwig.actors.dictation_wayland import WaylandDesktop

        return WaylandDesktop(settings.delivery, choice.focus, settings.type_without_focus_check)
    return None


class Dictator:
    """One dictation at a time: its bounds, its Finals, its delivery."""

    def __init__(self, actor: Actor, params: DictationParams) -> None:
        self._actor = actor
        self._settings = params.settings
        self._pcm = Ring.attach(params.pcm_ring)
        self._desktop = _open_desktop(params.desktop, params.settings)
        self._hotkey = params.desktop.hotkey
        self._current: _Dictation | None = None
        self._state = DictationState(state="ready")
        #: The last text delivered: into which window, when; the next one may continue it.
        self._last: tuple[int, str, float] | None = None
        self._outcome: asyncio.Future[DictationState] | None = None
        #: False while the user turned the hotkey off (the monitor's d key).
        self._enabled = True
        #: The Finals of the text held last (not typed: focus moved), which ``retry`` reads again.
        self._held: list[Final] = []
        #: A retry in flight: each held Final's span, and its revision once it came.
        self._retrying: dict[tuple[int, int], Final | None] = {}
        #: The mic's replay reached its end: no audio is left to dictate from.
        self._mic_ended = False
        #: The last text's delivery (typing it can take a while).
        self._delivering: asyncio.Task | None = None

    def close(self) -> None:
        self._pcm.close()

    async def delivered(self) -> None:
        """Wait for the text being delivered, if any: the session ends once it is out."""
        if self._delivering is not None:
            await self._delivering

    def ready_detail(self, hotkey: bool) -> str:
        if not hotkey:
            return "no hotkey: `earwig ctl toggle` starts and stops"
        if self._settings.mode == "hold":
            return f"hold {self._settings.hotkey} and speak"
        return f"press {self._settings.hotkey}, speak, press it again"

    async def mic_running(self, timeout: float) -> None:
        await self._pcm.reader(start=0).wait(timeout)

    def key_down(self) -> None:
        if not self._enabled:
            return
        if self._settings.mode == "hold" or self._current is None:
            self.begin()
        else:
            self.end()

    def key_up(self) -> None:
        if self._settings.mode == "hold" and self._enabled:
            self.end()

    async def command(self, action: DictationAction) -> DictationState:
        """What ``earwig ctl`` or the monitor asks; ``stop`` answers once the text is out."""
        listening = self._current is not None and self._current.end is None
        if action == "start" or (action == "toggle" and not listening):
            self.begin()
        elif action in ("stop", "toggle") and listening:
            outcome = self.end()
            return await asyncio.wait_for(asyncio.shield(outcome), dictation_control.STOP_WAIT_S)
        elif action == "cancel" and listening:
            self.end(cancel=True)
        elif action == "retry":
            return await self.retry()
        elif action in ("enable", "disable"):
            self._enabled = action == "enable"
            self.publish_state("ready" if self._enabled else "off",
                               self.ready_detail(self._hotkey) if self._enabled else "the hotkey is off")
        return self._state

    def mic_ended(self) -> None:
        """A replayed mic's file is at its end: the dictation in progress ends with it (the
        mel actor closes its utterance there), and a new one cannot begin."""
        self._mic_ended = True
        if self._current is None:
            self.publish_state("off", MIC_ENDED)

    def begin(self) -> None:
        if self._current is not None:
            return  # one at a time: a press while the last one is still being typed waits for none
        if self._mic_ended:
            self.publish_state("failed", MIC_ENDED)
            return
        window = self._desktop.focused_window() if self._desktop else 0
        self._current = _Dictation(start=self._position(), window=window)
        self._actor.publish(DictationStart(start=self._current.start))
        self.publish_state("listening")

    def end(self, cancel: bool = False) -> asyncio.Future[DictationState]:
        current = self._current
        self._outcome = self._outcome if self._outcome and not self._outcome.done() else \
            asyncio.get_running_loop().create_future()
        if current is None or current.end is not None:
            return self._outcome
        current.end, current.cancel = self._position(), cancel
        self._actor.publish(DictationStop(start=current.start, end=current.end, cancel=cancel))
        self.publish_state("ready" if cancel else "transcribing")
        return self._outcome

    def resume(self, message: DictationStart | DictationStop) -> None:
        """A dictation this actor's crashed predecessor began and did not finish, re-sent by
        the supervisor: end it now. Its text is still made, and held on the clipboard,
        since the window it was meant for is not known."""
        current = self._current
        if isinstance(message, DictationStart) and current is None:
            self._current = _Dictation(start=message.start, window=None)
            self.end()
        elif isinstance(message, DictationStop) and current is not None and current.start == message.start:
            current.cancel = message.cancel  # the user's own stop came before the crash

    async def retry(self) -> DictationState:
        """Read the held text's audio again (beam search, ``models.retry``); the new text is
        held on the clipboard, and answered. Only held text: typed text is in its window."""
        if not self._held:
            return DictationState(state="failed", detail="no held text to retry: only text that was not typed "
                                                         "(focus moved) is held")
        if any(self._pcm.samples(f.start, f.end) is None for f in self._held):
            return DictationState(state="failed", detail="the held text's audio has left the mic's ring "
                                                         "(ring_seconds): it can no longer be retried")
        self._retrying = {(f.start, f.end): None for f in self._held}
        self._outcome = asyncio.get_running_loop().create_future()
        for final in self._held:
            self._actor.publish(Retry(source="mic", start=final.start, end=final.end,
                                      prompt=said_before(self._held, final)))
        self.publish_state("transcribing", "retrying the held text")
        return await asyncio.wait_for(asyncio.shield(self._outcome), dictation_control.STOP_WAIT_S)

    def _revised(self, final: Final) -> None:
        if (final.start, final.end) not in self._retrying:
            return
        self._retrying[final.start, final.end] = final
        if any(revision is None for revision in self._retrying.values()):
            return
        self._held, self._retrying = list(self._retrying.values()), {}
        text = dictated(self._held, self._settings.replacements)
        detail = "retried"
        if self._desktop is not None:
            self._desktop.set_clipboard(text)
            detail += ": the new text is on the clipboard (paste it with ctrl+v)"
        self._settle(DictationState(state="held", text=text, detail=detail))

    def heard(self, final: Final) -> None:
        if final.revised:
            self._revised(final)
            return
        current = self._current
        if current is not None and final.end > current.start and (current.end is None or final.start < current.end):
            current.finals.append(final)
            self._finish_if_complete()

    def closed(self, span: DictationSpan) -> None:
        if self._current is not None and span.start == self._current.start:
            self._current.utterances = span.utterances
            self._finish_if_complete()

    def _finish_if_complete(self) -> None:
        current = self._current
        if current is None or current.utterances is None or len(current.finals) < current.utterances:
            return
        self._current = None
        if current.cancel:
            self._settle(DictationState(state="ready", detail="cancelled"))
            return
        text = dictated(current.finals, self._settings.replacements)
        if not text.strip():
            self._settle(DictationState(state="delivered", detail="no speech was heard: nothing to type"))
            return
        if self._last and self._last[0] == current.window and time.monotonic() - self._last[2] < self._settings.join_within_s:
            text = joined(text, self._last[1])
        self._delivering = asyncio.get_running_loop().create_task(self._deliver(text, current.window, current.finals))

    # --- publish ----------------------------------------------------------------------

    async def _deliver(self, text: str, window: int | None, finals: list[Final]) -> None:
        if self._desktop is None:
            outcome = Outcome("no desktop to type into: the text is printed, not typed")
        elif window is None:
            self._desktop.set_clipboard(text)
            outcome = Outcome(f"dictation was interrupted (its process restarted), so the text was not "
                              f"typed: {ON_THE_CLIPBOARD}")
        else:
            try:
                outcome = await asyncio.to_thread(self._desktop.deliver, text, window)
            except (EarwigError, OSError, subprocess.SubprocessError) as error:
                outcome = Outcome(f"could not type the text: {error}; {self._onto_clipboard(text)}")
        if not outcome.held:
            self._last = (window, text, time.monotonic())
            self._settle(DictationState(state="delivered", text=text))
        else:
            self._held = finals
            self._settle(DictationState(state="held", detail=outcome.held, text=text))

    def _onto_clipboard(self, text: str) -> str:
        """Where text that could not be typed went, in words."""
        try:
            self._desktop.set_clipboard(text)
        except (EarwigError, OSError, subprocess.SubprocessError):
            return "it is printed only"
        return ON_THE_CLIPBOARD

    def _settle(self, state: DictationState) -> None:
        self._state = state
        self._actor.publish(state)
        if self._outcome is not None and not self._outcome.done():
            self._outcome.set_result(state)

    def publish_state(self, phase: str, detail: str = "") -> None:
        self._state = DictationState(state=phase, detail=detail)  # type: ignore[arg-type]
        self._actor.publish(self._state)

    def _position(self) -> int:
        return self._pcm.published * self._pcm.spec.item_len
