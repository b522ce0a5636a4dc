"""The global hotkey: pynput's keyboard listener (a thread of its own), turned into press
and release calls on the dictation actor's loop.

Why a Listener and not pynput's ``GlobalHotKeys``: push-to-talk needs the release, which
GlobalHotKeys does not report; and the listener says which key events were injected
(pynput's own typing). Those are ignored, so the text we type never works the hotkey.
"""

from __future__ import annotations

import asyncio
import importlib
import os
from collections.abc import Callable

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


class Hotkey:
    """Calls ``on_press`` when the last of the hotkey's keys goes down, ``on_release`` when
    one of them comes up, on ``loop``'s thread."""

    def __init__(self, hotkey: str, loop: asyncio.AbstractEventLoop,
                 on_press: Callable[[], None], on_release: Callable[[], None]) -> None:
        from pynput import keyboard

        self._keys = set(parse(hotkey))
        self._down: set = set()
        self._active = False
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
        self._down.add(self._listener.canonical(key))
        if not self._active and self._keys <= self._down:
            self._active = True
            self._loop.call_soon_threadsafe(self._on_press)

    def _release(self, key, injected: bool = False) -> None:
        if injected or key is None:
            return
        key = self._listener.canonical(key)
        self._down.discard(key)
        if self._active and key in self._keys:
            self._active = False
            self._loop.call_soon_threadsafe(self._on_release)
