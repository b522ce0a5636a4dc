"""When a command-line client's run is over (``supervisor/following.RunEnd``), message by
message: a fatal failure ends it at once; with only replayed files, once the mel actor has
read them and every utterance's end has a Final; with a live device, only the user does."""

import pytest

from earwig.messages import ActorFailed, Final, SpeechEnd
from earwig.supervisor.following import RunEnd

pytestmark = pytest.mark.pure


def end(source="mic", start=0, stop=16000) -> SpeechEnd:
    return SpeechEnd(source=source, start=start, end=stop)


def final(source="mic", start=0, stop=16000, text="Said.") -> Final:
    return Final(source=source, start=start, end=stop, text=text, language="en")


def test_replays_end_once_read_and_every_utterance_has_its_final():
    run = RunEnd(replays_only=True)
    assert not run.over(replays_read=False)
    run.heard(end("mic", 0, 16000))
    run.heard(end("speakers", 0, 20000))
    assert not run.over(replays_read=True)  # two Finals owed
    run.heard(final("mic", 0, 16000))
    assert not run.over(replays_read=True)
    run.heard(final("speakers", 0, 20000))
    assert run.over(replays_read=True) and not run.over(replays_read=False)


def test_an_echo_split_is_owed_until_its_last_part_which_ends_where_the_utterance_did():
    run = RunEnd(replays_only=True)
    run.heard(end("mic", 0, 48000))
    run.heard(final("mic", 0, 16000, "he hoped there"))  # the echo part
    assert not run.over(replays_read=True)
    run.heard(final("mic", 16000, 48000, "the talker's own words"))
    assert run.over(replays_read=True)


def test_without_a_final_actor_replays_end_once_read():
    run = RunEnd(replays_only=True, finals=False)
    run.heard(end("mic", 0, 16000))
    assert run.over(replays_read=True) and not run.over(replays_read=False)


def test_a_live_device_runs_until_stopped_and_a_fatal_failure_ends_any_run():
    live = RunEnd(replays_only=False)
    assert not live.over(replays_read=True)
    live.heard(ActorFailed(actor="final", fatal=False, error="restarting"))
    assert not live.over(replays_read=True) and live.failure is None
    first = ActorFailed(actor="final", fatal=True, error="keeps crashing", fix="see its log")
    live.heard(first)
    live.heard(ActorFailed(actor="mel", fatal=True, error="later"))
    assert live.over(replays_read=False) and live.failure is first
