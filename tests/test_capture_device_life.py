"""A live device's life, event by event (``actors/capture_device_life``): gone when it
stops delivering or leaves PulseAudio's listing, silence owed at real-time pace while it is
gone, a reopen that fails is the device still gone (the first open's failure is not), and
the user's pause counted in replay time."""

import pytest

from earwig.actors.capture_device_life import DEVICE_SILENT_S, PRESENCE_POLL_S, DeviceLife, Gone, Pause
from earwig.config import SAMPLE_RATE

pytestmark = pytest.mark.pure


def streaming(at: float = 100.0) -> DeviceLife:
    life = DeviceLife()
    life.opened(at)
    return life


def test_blocks_keep_it_streaming_and_a_long_silence_makes_it_gone():
    life = streaming()
    for step in range(20):  # a block every poll
        life.block(100.0 + step * PRESENCE_POLL_S)
        assert life.nothing_for_a_poll(100.0 + step * PRESENCE_POLL_S) is None
    last = 100.0 + 19 * PRESENCE_POLL_S
    assert life.nothing_for_a_poll(last + DEVICE_SILENT_S - 0.1) is None and life.state == "streaming"
    assert life.nothing_for_a_poll(last + DEVICE_SILENT_S + 0.1) == Gone("stopped delivering audio")
    assert life.state == "gone"


def test_the_listing_is_checked_at_most_once_a_poll_and_unlisted_is_gone():
    life = streaming()
    assert life.check_listing(100.0)
    assert not life.check_listing(100.0 + PRESENCE_POLL_S / 2)
    assert life.check_listing(100.0 + PRESENCE_POLL_S)
    assert life.listed(True, 100.5) is None and life.state == "streaming"
    assert life.listed(False, 101.0) == Gone("disconnected") and life.state == "gone"


def test_silence_is_owed_at_real_time_pace_while_gone_and_never_twice():
    life = streaming()
    life.listed(False, 200.0)
    assert life.silence_due(200.5) == SAMPLE_RATE // 2
    assert life.silence_due(200.5) == 0  # already written
    assert life.silence_due(202.0) == int(1.5 * SAMPLE_RATE)
    assert life.silence_due(201.0) == 0  # a clock read late never takes back


def test_back_then_gone_again_owes_from_the_second_loss():
    life = streaming()
    life.listed(False, 10.0)
    life.silence_due(12.0)
    life.back()
    assert life.state == "opening"
    life.opened(13.0)
    life.listed(False, 20.0)
    assert life.silence_due(21.0) == SAMPLE_RATE


def test_a_first_open_that_fails_is_the_users_to_fix_a_reopen_that_fails_is_still_gone():
    first = DeviceLife()
    assert first.open_failed("Invalid device", 1.0) is None and first.state == "opening"
    life = streaming()
    life.listed(False, 5.0)
    life.back()
    gone = life.open_failed("Device unavailable", 6.0)
    assert gone == Gone("listed again but cannot be opened (Device unavailable)") and life.state == "gone"


def test_a_pause_stops_replay_time_for_as_long_as_it_lasts():
    pause = Pause()
    pause.set(True, 10.0)
    pause.set(True, 11.0)  # said again: still from 10 s
    pause.set(False, 12.5)
    pause.set(False, 13.0)
    pause.set(True, 20.0)
    pause.set(False, 21.0)
    assert not pause.paused and pause.paused_s == pytest.approx(3.5)
