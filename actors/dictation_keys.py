"""The global hotkey on X11: pynput's keyboard listener (a thread of its own), turned into
press and release calls on the dictation actor's loop; ``Chord``, which decides when a
hotkey is down, for it and for ``dictation_evdev`` (Wayland).

Why a Listener and not pynput's ``GlobalHotKeys``: push-to-talk needs the release, which
GlobalHotKeys does not report; and the listener says which key events were injected
(pynput's own typing). Those are ignored, so the text we type never works the hotkey.
"""

from __future__ import annotations

import asyncio
import importlib
import os
from collections.abc import Callable, Hashable, Iterable

from earwig.errors import EarwigError

HOTKEY_FIX = ("spell it like <ctrl>+<alt>+<space> or <cmd>+d: key names in <> (ctrl, alt, shift, "
              "cmd, space, f1, ...), single characters as they are, joined by +")


def display_problem() -> str | None:
    """Why a global hotkey and typing cannot work here, or None when they can."""
    display = os.environ.get("DISPLAY")
    if not display:
        return "there is no X display (DISPLAY is not set)"
    try:
        importlib.import_module("pynput.keyboard")  # connects to the display when imported
    except ImportError as error:
        return f"the X display {display} cannot be reached ({error})"
    return None


def parse(hotkey: str) -> list:
    """The hotkey's keys; a string pynput cannot read is one message naming the setting."""
    from pynput import keyboard

    try:
        return keyboard.HotKey.parse(hotkey)
    except ValueError as error:
        raise EarwigError(f"dictation.hotkey {hotkey!r} cannot be read ({error})", HOTKEY_FIX) from None


class Chord:
    """A hotkey's keys in, key by key: says when the chord comes down (the last of its keys
    pressed while the others are held) and when it comes up (one of them released). Each
    of the hotkey's keys is a set of keys that count as it: evdev tells the left ctrl from
    the right one, and either is "ctrl". A key held down and repeated presses nothing again."""

    def __init__(self, keys: Iterable[frozenset[Hashable]]) -> None:
        self._keys = list(keys)
        self._down: set[Hashable] = set()
        self._active = False

    def press(self, key: Hashable) -> bool:
        """``key`` went down; True: the chord is down now."""
        self._down.add(key)
        if self._active or not all(self._down & either for either in self._keys):
            return False
        self._active = True
        return True

    def release(self, key: Hashable) -> bool:
        """``key`` came up; True: the chord is up now."""
        self._down.discard(key)
        if not self._active or not any(key in either for either in self._keys):
            return False
        self._active = False
        return True


class Hotkey:
    """Calls ``on_press`` when the last of the hotkey's keys goes down, ``on_release`` when
    one of them comes up, on ``loop``'s thread."""

    def __init__(self, hotkey: str, loop: asyncio.AbstractEventLoop,
                 on_press: Callable[[], None], on_release: Callable[[], None]) -> None:
        from pynput import keyboard

        self._chord = Chord(frozenset([key]) for key in parse(hotkey))
        self._loop, self._on_press, self._on_release = loop, on_press, on_release
        self._listener = keyboard.Listener(on_press=self._press, on_release=self._release)

    def start(self) -> None:
        self._listener.start()
        self._listener.wait()

    def stop(self) -> None:
        self._listener.stop()

    def _press(self, key, injected: bool = False) -> None:
        if injected or key is None:
            return
        if self._chord.press(self._listener.canonical(key)):
            self._loop.call_soon_threadsafe(self._on_press)

    def _release(self, key, injected: bool = False) -> None:
        if injected or key is None:
            return
        if self._chord.release(self._listener.canonical(key)):
            self._loop.call_soon_threadsafe(self._on_release)
