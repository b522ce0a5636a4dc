"""The hotkey on Wayland, read from the keyboards through evdev: when a chord is down
(event by event), how its spelling becomes key codes, and the one line that says why the
keyboards cannot be read. Reading a real keyboard needs /dev/input (and /dev/uinput for a
test to make one), which these machines and CI do not have: the end-to-end test in
test_dictation_wayland checks the line earwig dictate says instead."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from evdev import InputEvent, ecodes

from earwig.actors.dictation_evdev import EvdevHotkey, hotkey_problem, parse
from earwig.actors.dictation_keys import Chord
from earwig.errors import EarwigError

CTRL = frozenset({ecodes.KEY_LEFTCTRL, ecodes.KEY_RIGHTCTRL})
ALT = frozenset({ecodes.KEY_LEFTALT, ecodes.KEY_RIGHTALT})
SPACE = frozenset({ecodes.KEY_SPACE})


@pytest.mark.pure
def test_the_chord_is_down_when_its_last_key_is_and_up_at_the_first_release():
    chord = Chord([CTRL, ALT, SPACE])
    assert [chord.press(ecodes.KEY_LEFTCTRL), chord.press(ecodes.KEY_RIGHTALT)] == [False, False]
    assert chord.press(ecodes.KEY_SPACE) is True
    assert chord.press(ecodes.KEY_SPACE) is False  # held: the keyboard repeats, nothing starts again
    assert chord.press(ecodes.KEY_A) is False and chord.release(ecodes.KEY_A) is False  # not the hotkey's
    assert chord.release(ecodes.KEY_RIGHTALT) is True
    assert chord.release(ecodes.KEY_SPACE) is False and chord.release(ecodes.KEY_LEFTCTRL) is False
    assert chord.press(ecodes.KEY_SPACE) is False  # ctrl and alt are up: space alone is not the hotkey


@pytest.mark.pure
def test_the_chord_needs_every_key_and_counts_either_side_of_a_modifier():
    chord = Chord([CTRL, SPACE])
    assert chord.press(ecodes.KEY_SPACE) is False
    assert chord.press(ecodes.KEY_RIGHTCTRL) is True  # the order of the keys does not matter
    assert chord.release(ecodes.KEY_RIGHTCTRL) is True
    assert chord.press(ecodes.KEY_LEFTCTRL) is True  # space still held: down again


def _key(code: int, value: int) -> list[InputEvent]:
    """One key's event as a keyboard sends it: the scan code, the key, the sync."""
    return [InputEvent(0, 0, ecodes.EV_MSC, ecodes.MSC_SCAN, 0x70000 + code),
            InputEvent(0, 0, ecodes.EV_KEY, code, value), InputEvent(0, 0, ecodes.EV_SYN, ecodes.SYN_REPORT, 0)]


@pytest.mark.pure
def test_a_keyboards_events_press_and_release_the_hotkey_once_each_through_its_repeats():
    said: list[str] = []
    loop = asyncio.new_event_loop()
    hotkey = EvdevHotkey("<ctrl>+<alt>+<space>", loop, lambda: said.append("press"), lambda: said.append("release"))
    loop.close()  # the events are handled where they are read: the loop only watches the devices
    hotkey.handle(_key(ecodes.KEY_LEFTCTRL, 1) + _key(ecodes.KEY_LEFTALT, 1) + _key(ecodes.KEY_SPACE, 1))
    assert said == ["press"]
    hotkey.handle([event for _ in range(20) for event in _key(ecodes.KEY_SPACE, 2)])  # held: repeats
    assert said == ["press"]
    hotkey.handle(_key(ecodes.KEY_SPACE, 0) + _key(ecodes.KEY_LEFTALT, 0) + _key(ecodes.KEY_LEFTCTRL, 0))
    assert said == ["press", "release"]


@pytest.mark.pure
@pytest.mark.parametrize("spelled, keys", [
    ("<ctrl>+<alt>+<space>", [CTRL, ALT, SPACE]),
    ("<cmd>+d", [frozenset({ecodes.KEY_LEFTMETA, ecodes.KEY_RIGHTMETA}), frozenset({ecodes.KEY_D})]),
    ("<ctrl_r>+<f9>", [frozenset({ecodes.KEY_RIGHTCTRL}), frozenset({ecodes.KEY_F9})]),
    ("<alt_gr>+/", [frozenset({ecodes.KEY_RIGHTALT}), frozenset({ecodes.KEY_SLASH})]),
    ("<shift>+<page_down>+1", [frozenset({ecodes.KEY_LEFTSHIFT, ecodes.KEY_RIGHTSHIFT}),
                               frozenset({ecodes.KEY_PAGEDOWN}), frozenset({ecodes.KEY_1})]),
])
def test_the_hotkey_keeps_its_x11_spelling_on_wayland(spelled, keys):
    assert parse(spelled) == keys


@pytest.mark.pure
@pytest.mark.parametrize("spelled, part", [("<ctrl>+<spcae>", "<spcae>"), ("<ctrl>++", ""), ("ctrl+d", "ctrl")])
def test_a_hotkey_that_names_no_key_is_one_message_naming_the_setting(spelled, part):
    with pytest.raises(EarwigError) as raised:
        parse(spelled)
    assert raised.value.problem == f"dictation.hotkey {spelled!r} cannot be read (no key is called {part!r})"
    assert "<ctrl>+<alt>+<space>" in raised.value.fix


@pytest.mark.pure
def test_why_the_keyboards_cannot_be_read_is_said_with_its_fix(tmp_path):
    hotkey = "<ctrl>+<alt>+<space>"
    assert hotkey_problem(hotkey, tmp_path / "input") == (
        f"no keyboard can be seen ({tmp_path / 'input'} holds no input devices: earwig runs without access to "
        "this machine's keyboards)")
    (tmp_path / "event0").write_bytes(b"")  # not an input device: evdev cannot ask it for its keys
    assert hotkey_problem(hotkey, tmp_path) == f"no keyboard in {tmp_path} has every key of dictation.hotkey"


@pytest.mark.pipeline
def test_keyboards_this_user_may_not_read_name_the_input_group():
    with tempfile.TemporaryDirectory() as folder:
        devices = Path(folder) / "input"
        devices.mkdir()
        (devices / "event3").write_bytes(b"")
        (devices / "event3").chmod(0)
        check = [sys.executable, "-c", "import sys, pathlib; from earwig.actors.dictation_evdev import hotkey_problem; "
                 "print(hotkey_problem('<ctrl>+d', pathlib.Path(sys.argv[1])))", str(devices)]
        if os.geteuid() == 0:  # root reads any file: ask as a user who may not
            Path(folder).chmod(0o755)
            check = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *check]
        said = subprocess.run(check, capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    assert said == (f"the keyboards in {devices} cannot be read by this user: join the input group "
                    "(sudo usermod -aG input $USER, then log in again)")
