"""The dictation actor: a hotkey or a command in, the final model's text typed into the
window that had focus.

receive  the hotkey (``dictation_keys``: pynput on its own thread on X11; ``dictation_evdev``:
         the keyboards read on the loop on Wayland), DictationCommand (the monitor's key, or
         ``earwig ctl`` over the control socket), and from the pipeline the mic's Finals and
         the mel actor's DictationSpan
compute  what each of them means for the dictation (``dictation_machine``: when it begins
         and ends, when its text is complete, what is typed, held or retried); the text is
         its Finals with spoken replacements, joined to the text typed into the same window
         before (``dictation_text``)
publish  DictationStart / DictationStop (the mel actor and the final model act on them),
         DictationState (the screen, ``earwig ctl``, the command's output); the text into
         the focused window (``dictation_delivery``), never into one that took focus meanwhile
         (held on the clipboard instead, and said in a desktop notification: ``dictation_notice``);
         Retry for each Final of held text (``earwig ctl retry``): the revised text is held
         on the clipboard instead

Where the sample positions come from: the mic's PCM ring. The key's press and release are
the ring's write position at that moment, the same clock the VAD and the models count in.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from earwig.actors import dictation_control
from earwig.actors.dictation_delivery import ON_THE_CLIPBOARD, Desktop, Outcome
from earwig.actors.dictation_desktops import DesktopChoice
from earwig.actors.dictation_keys import Hotkey
from earwig.actors.dictation_machine import Answer, Clipboard, Deliver, DictationMachine, Effect, Publish
from earwig.actors.dictation_notice import notify_held
from earwig.actors.runtime import Actor
from earwig.config import DictationConfig
from earwig.errors import EarwigError
from earwig.messages import (DictationAction, DictationCommand, DictationSpan, DictationStart, DictationState,
                             DictationStop, Final, SourceEnded)
from earwig.shm import Ring

#: How long "ready" waits for the mic's first audio (a device's stream can take a second or
#: two to deliver its first block: a dictation started before would lose its first words).
MIC_WAIT_S = 10.0

#: The mic's Finals, the mel actor's word that a dictation's utterance is closed, commands
#: from the monitor's key; DictationStart / DictationStop too: the supervisor re-sends an
#: unfinished dictation's to a restarted dictation actor, which finishes it
#: (``DictationMachine.resume``); SourceEnded: a replayed mic has no more audio to dictate from.
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
    desktop: DesktopChoice = DesktopChoice("x11", focus="x11", hotkey="pynput")


async def main(actor: Actor) -> None:
    params: DictationParams = actor.params
    loop = asyncio.get_running_loop()
    dictator = Dictator(actor, params)
    hotkey = None
    if params.desktop.hotkey:
        hotkey = _open_hotkey(params.desktop.hotkey, params.settings.hotkey, loop, dictator)
        await asyncio.to_thread(hotkey.start)
    server = await dictation_control.serve(Path(params.socket), dictator.command)
    await dictator.mic_running(MIC_WAIT_S)
    dictator.ready()
    handlers = {DictationCommand: lambda m: dictator.command(m.action),
                Final: lambda m: dictator.heard(m) if m.source == "mic" else None,
                DictationSpan: dictator.closed, DictationStart: dictator.resume, DictationStop: dictator.resume,
                SourceEnded: lambda m: dictator.mic_ended() if m.source == "mic" else None}
    try:
        await actor.serve(handlers, actor.stopping.wait())
        while not actor.control.empty():  # what came before the Shutdown: the last Finals
            message = actor.control.get_nowait()
            if isinstance(message, (Final, DictationSpan)):
                handlers[type(message)](message)
        await dictator.delivered()
    finally:
        server.close()
        if hotkey is not None:
            hotkey.stop()
        Path(params.socket).unlink(missing_ok=True)
        dictator.close()


# --- compute ------------------------------------------------------------------------------


def _open_hotkey(reader: str, spelled: str, loop: asyncio.AbstractEventLoop, dictator: Dictator):
    """The hotkey, read as the desktop allows (``DesktopChoice.hotkey``)."""
    if reader == "evdev":
        from earwig.actors.dictation_evdev import EvdevHotkey

        return EvdevHotkey(spelled, loop, dictator.key_down, dictator.key_up)
    return Hotkey(spelled, loop, dictator.key_down, dictator.key_up)


def _open_desktop(choice: DesktopChoice, settings: DictationConfig):
    """The desktop the text is typed into, as ``choice`` found it; None: the text is printed."""
    if choice.kind == "x11":
        return Desktop(settings.delivery)
    if choice.kind == "wayland":
        from earwig.actors.dictation_wayland import WaylandDesktop

        return WaylandDesktop(settings.delivery, choice.focus, settings.type_without_focus_check, choice.types)
    return None


class Dictator:
    """The machine's events in from the actor's loop, its effects carried out: the ring's
    position and the focused window read, messages published, text typed on a thread,
    ``earwig ctl`` answered."""

    def __init__(self, actor: Actor, params: DictationParams) -> None:
        self._actor = actor
        self._pcm = Ring.attach(params.pcm_ring)
        self._desktop = _open_desktop(params.desktop, params.settings)
        self._machine = DictationMachine(params.settings, bool(params.desktop.hotkey), self._desktop is not None)
        #: A command waiting for the dictation's outcome (``earwig ctl stop``, ``retry``).
        self._answer: asyncio.Future[DictationState] | None = None
        #: The deliveries under way (typing can take a while); each one's end is awaited.
        self._delivering: set[asyncio.Task] = set()

    def close(self) -> None:
        self._pcm.close()

    async def delivered(self) -> None:
        """Wait for the text being delivered, if any: the session ends once it is out."""
        while self._delivering:
            await asyncio.gather(*self._delivering)

    async def mic_running(self, timeout: float) -> None:
        await self._pcm.reader(start=0).wait(timeout)

    def ready(self) -> None:
        self._carry_out(self._machine.ready())

    def key_down(self) -> None:
        self._carry_out(self._machine.key_down(self._position(), self._window("key_down")))

    def key_up(self) -> None:
        self._carry_out(self._machine.key_up(self._position()))

    async def command(self, action: DictationAction) -> DictationState:
        """What ``earwig ctl`` or the monitor asks; ``stop`` and ``retry`` answer once the
        text is out."""
        if action == "retry":
            held = self._machine.held
            effects, answer = self._machine.retry(all(self._pcm.samples(f.start, f.end) is not None for f in held))
            waits = answer is None
        else:
            effects, waits = self._machine.command(action, self._position(), self._window(action))
            answer = self._machine.state
        if waits:
            self._answer = self._answer if self._answer and not self._answer.done() else \
                asyncio.get_running_loop().create_future()
            outcome = self._answer
        self._carry_out(effects)
        if waits:
            return await asyncio.wait_for(asyncio.shield(outcome), dictation_control.STOP_WAIT_S)
        return answer

    def heard(self, final: Final) -> None:
        self._carry_out(self._machine.heard(final, time.monotonic()))

    def closed(self, span: DictationSpan) -> None:
        self._carry_out(self._machine.closed(span, time.monotonic()))

    def resume(self, message: DictationStart | DictationStop) -> None:
        self._carry_out(self._machine.resume(message, self._position()))

    def mic_ended(self) -> None:
        self._carry_out(self._machine.mic_ended())

    # --- publish ----------------------------------------------------------------------

    def _carry_out(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Publish):
                self._actor.publish(effect.message)
            elif isinstance(effect, Deliver):
                task = asyncio.get_running_loop().create_task(self._deliver(effect))
                self._delivering.add(task)
                task.add_done_callback(self._delivering.discard)
            elif isinstance(effect, Clipboard):
                self._onto_clipboard(effect.text)
            elif isinstance(effect, Answer) and self._answer is not None and not self._answer.done():
                self._answer.set_result(effect.state)

    async def _deliver(self, deliver: Deliver) -> None:
        if self._desktop is None:
            outcome = Outcome("no desktop to type into: the text is printed, not typed")
        elif deliver.window is None:
            outcome = Outcome(f"dictation was interrupted (its process restarted), so the text was not typed: "
                              f"{self._onto_clipboard(deliver.text)}")
        else:
            try:
                outcome = await asyncio.to_thread(self._desktop.deliver, deliver.text, deliver.window)
            except (EarwigError, OSError, subprocess.SubprocessError) as error:
                outcome = Outcome(f"could not type the text: {error}; {self._onto_clipboard(deliver.text)}")
            if outcome.held:
                await asyncio.to_thread(notify_held, outcome.held, deliver.text)
        self._carry_out(self._machine.delivered(deliver, outcome.held, time.monotonic()))

    def _onto_clipboard(self, text: str) -> str:
        """Where text that could not be typed went, in words."""
        try:
            self._desktop.set_clipboard(text)
        except (EarwigError, OSError, subprocess.SubprocessError):
            return "it is printed only"
        return ON_THE_CLIPBOARD

    def _window(self, action: DictationAction | str) -> int | None:
        """The focused window, read only when ``action`` begins a dictation (0: no desktop)."""
        if not self._machine.would_begin(action):  # type: ignore[arg-type]
            return None
        return self._desktop.focused_window() if self._desktop else 0

    def _position(self) -> int:
        return self._pcm.published * self._pcm.spec.item_len
