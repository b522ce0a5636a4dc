"""The global hotkey on Wayland: the keyboards read through evdev, turned into press and
release calls on the dictation actor's loop.

Why evdev: Wayland gives no application the keys pressed in another one's window, so a
global hotkey needs the compositor (a key binding running ``earwig ctl``, or the
GlobalShortcuts portal, which the wlroots compositors do not offer) or the kernel's input
devices, which a user in the ``input`` group may read, as voxtype and keyd do. Reading
them works on every compositor, hold-to-talk included (a compositor binding sees the
release only where it binds releases). The devices are read, never grabbed: the keys
still reach the focused window, as with pynput on X11, and only the hotkey's keys are
looked at, never kept or logged.

Why the hotkey keeps pynput's spelling (``<ctrl>+<alt>+<space>``): it is one setting for
both desktops. evdev reports where a key is, not what it writes, so a letter is the key at
that letter's place on a US layout, and ``ctrl`` is either ctrl key (``ctrl_l`` for the
left one alone).

What is left out: a keyboard plugged in after the start is not read until the next one.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from earwig.actors.dictation_keys import HOTKEY_FIX, Chord
from earwig.errors import EarwigError

INPUT_DIR = Path("/dev/input")
INPUT_GROUP_FIX = "join the input group (sudo usermod -aG input $USER, then log in again)"

#: pynput's key names, as evdev's key codes' names: a name with both sides is either one.
NAMED = {"ctrl": ("LEFTCTRL", "RIGHTCTRL"), "ctrl_l": ("LEFTCTRL",), "ctrl_r": ("RIGHTCTRL",),
         "alt": ("LEFTALT", "RIGHTALT"), "alt_l": ("LEFTALT",), "alt_r": ("RIGHTALT",), "alt_gr": ("RIGHTALT",),
         "shift": ("LEFTSHIFT", "RIGHTSHIFT"), "shift_l": ("LEFTSHIFT",), "shift_r": ("RIGHTSHIFT",),
         "cmd": ("LEFTMETA", "RIGHTMETA"), "cmd_l": ("LEFTMETA",), "cmd_r": ("RIGHTMETA",),
         "page_up": ("PAGEUP",), "page_down": ("PAGEDOWN",), "caps_lock": ("CAPSLOCK",),
         "num_lock": ("NUMLOCK",), "scroll_lock": ("SCROLLLOCK",), "print_screen": ("SYSRQ",),
         "menu": ("COMPOSE",)}
#: The characters of a US layout's keys that are neither letters nor digits.
PUNCTUATION = {"-": "MINUS", "=": "EQUAL", "[": "LEFTBRACE", "]": "RIGHTBRACE", ";": "SEMICOLON",
               "'": "APOSTROPHE", "`": "GRAVE", "\\": "BACKSLASH", ",": "COMMA", ".": "DOT", "/": "SLASH"}


def parse(hotkey: str) -> list[frozenset[int]]:
    """The hotkey's keys as evdev key codes (each a set: either counts); a spelling that
    names no key is one message naming the setting."""
    from evdev import ecodes

    keys = []
    for part in hotkey.split("+"):
        if part.startswith("<") and part.endswith(">") and len(part) > 2:
            name = part[1:-1].lower()
            names = NAMED.get(name, (name.upper().replace("_", ""),))
        elif len(part) == 1:
            names = (PUNCTUATION.get(part, part.upper()),)
        else:
            names = ()
        codes = frozenset(getattr(ecodes, f"KEY_{name}", None) for name in names) - {None}
        if not codes:
            raise EarwigError(f"dictation.hotkey {hotkey!r} cannot be read (no key is called {part!r})", HOTKEY_FIX)
        keys.append(codes)
    return keys


def hotkey_problem(hotkey: str, input_dir: Path = INPUT_DIR) -> str | None:
    """Why ``hotkey`` cannot be read from the keyboards here, with the fix; None when it can.
    A spelling that names no key raises, as ``parse``."""
    return keyboard_problem(parse(hotkey), input_dir)


def keyboard_problem(keys: list[frozenset[int]], input_dir: Path = INPUT_DIR) -> str | None:
    """Why the hotkey's ``keys`` (``parse``) cannot be read here, with the fix; None when
    they can."""
    try:
        import evdev
    except ImportError:
        return "python-evdev is not installed (pip install evdev)"
    cannot_read = f"the keyboards in {input_dir} cannot be read by this user: {INPUT_GROUP_FIX}"
    try:
        found = sorted(input_dir.glob("event*"))
    except OSError:  # a folder this user may not enter
        return cannot_read
    if not found:
        return (f"no keyboard can be seen ({input_dir} holds no input devices: earwig runs without access to "
                f"this machine's keyboards)")
    readable = [path for path in found if os.access(path, os.R_OK)]
    if not readable:
        return cannot_read
    devices = _open(readable, frozenset().union(*keys), evdev)
    present = set().union(*(_keys_of(device, evdev) for device in devices))
    for device in devices:
        device.close()
    if not all(present & either for either in keys):
        return f"no keyboard in {input_dir} has every key of dictation.hotkey"
    return None


def _keys_of(device, evdev) -> set[int]:
    return set(device.capabilities().get(evdev.ecodes.EV_KEY, ()))


def _open(paths: list[Path], wanted: frozenset[int], evdev) -> list:
    """The devices among ``paths`` that have any of the ``wanted`` keys, opened."""
    opened = []
    for path in paths:
        try:
            device = evdev.InputDevice(str(path))
        except OSError:  # gone, or not an input device
            continue
        if _keys_of(device, evdev) & wanted:
            opened.append(device)
        else:
            device.close()
    return opened


class EvdevHotkey:
    """Calls ``on_press`` when the last of the hotkey's keys goes down on any keyboard,
    ``on_release`` when one of them comes up, on ``loop``'s thread."""

    def __init__(self, hotkey: str, loop: asyncio.AbstractEventLoop, on_press: Callable[[], None],
                 on_release: Callable[[], None], input_dir: Path = INPUT_DIR) -> None:
        self._keys = parse(hotkey)
        self._chord = Chord(self._keys)
        self._loop, self._on_press, self._on_release = loop, on_press, on_release
        self._input_dir = input_dir
        self._devices: list = []

    def start(self) -> None:
        """Open the devices that have the hotkey's keys (any thread); they are read on the loop."""
        import evdev

        self._devices = _open(sorted(self._input_dir.glob("event*")), frozenset().union(*self._keys), evdev)
        if not self._devices:  # unplugged since the session's start checked them (``keyboard_problem``)
            raise EarwigError(f"no keyboard in {self._input_dir} has the keys of dictation.hotkey",
                              "plug one in, or drive dictation with `earwig ctl toggle`")
        for device in self._devices:
            self._loop.call_soon_threadsafe(self._loop.add_reader, device.fd, self._read, device)

    def stop(self) -> None:
        """On the loop's thread."""
        for device in list(self._devices):
            self._forget(device)

    def _read(self, device) -> None:
        try:
            events = list(device.read())
        except BlockingIOError:
            return
        except OSError:  # unplugged
            self._forget(device)
            return
        self.handle(events)

    def handle(self, events: Iterable) -> None:
        """A device's events (evdev's ``InputEvent``s): a key's 1 is its press, 0 its
        release, 2 the keyboard repeating it; the scan codes and syncs between say nothing."""
        from evdev import ecodes

        for event in events:
            if event.type != ecodes.EV_KEY:
                continue
            if event.value == 1 and self._chord.press(event.code):
                self._on_press()
            elif event.value == 0 and self._chord.release(event.code):
                self._on_release()

    def _forget(self, device) -> None:
        self._devices.remove(device)
        self._loop.remove_reader(device.fd)
        device.close()
