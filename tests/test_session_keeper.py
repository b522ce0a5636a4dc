"""The session's keeper, message by message: what it publishes for each message the
supervisor hands it, what it writes to the session log first, and its one warning when the
log cannot be written."""

import json

import pytest

from earwig.config import SAMPLE_RATE
from earwig.messages import (ActorFailed, Final, Level, ModelState, Partial, PlayedBack, SpeechEnd, SpeechStart,
                             Stamps, Word)
from earwig.session.keeper import Keeping, SessionKeeper
from earwig.session.log import new_session_path

pytestmark = pytest.mark.pure

SAID = "ask not what your country can do for you ask what you can do for your country"


def final(source, start_s, end_s, text, **fields) -> Final:
    return Final(source=source, start=int(start_s * SAMPLE_RATE), end=int(end_s * SAMPLE_RATE), text=text,
                 language="en", **fields)


def timed(source, start_s, end_s, text) -> Final:
    """A Final with word times spread evenly over its span, as the echo net needs."""
    said = text.split()
    step = (end_s - start_s) / len(said)
    words = [Word(text=" " + w, start=int((start_s + i * step) * SAMPLE_RATE),
                  end=int((start_s + (i + 1) * step) * SAMPLE_RATE), probability=0.9) for i, w in enumerate(said)]
    return final(source, start_s, end_s, text, words=words)


def logged(path) -> list[tuple[str, str, bool]]:
    """Each line of the log as written (a revision is a line of its own): text, model, echo."""
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return [(record["text"], record["model"], record.get("echo", False)) for record in records]


def test_every_message_is_published_stamped_with_when_it_arrived():
    keeper = SessionKeeper()
    partial = Partial(source="mic", start=0, end=SAMPLE_RATE, committed="", tentative="ask",
                      stamps=Stamps(captured_ns=1))
    [out] = keeper.heard(partial)
    assert out.stamps.received_ns > 0 and out.stamps.captured_ns == 1
    level = Level(source="mic", end=800, rms_db=-30.0, peak_db=-20.0, clipped=False)
    assert keeper.heard(level) == [level]


def test_a_final_is_in_the_log_before_it_is_published_with_the_model_that_wrote_it(tmp_path):
    path = new_session_path(tmp_path)
    keeper = SessionKeeper(Keeping(log=path))
    keeper.heard(ModelState(role="final", model="base", state="ready"))
    [out] = keeper.heard(final("mic", 1, 3, "Hello there."))
    assert out.text == "Hello there." and logged(path) == [("Hello there.", "base", False)]
    keeper.heard(ModelState(role="retry", model="small", state="ready"))
    keeper.heard(final("mic", 1, 3, "Hello, there.", revised=True))
    keeper.heard(final("mic", 4, 5, "Served.", model="large-v3 at http://gpu:8000"))
    keeper.close()
    assert [model for _, model, _ in logged(path)] == ["base", "small", "large-v3 at http://gpu:8000"]


def test_a_speakers_final_inside_a_line_played_back_is_marked_echo_and_still_logged(tmp_path):
    path = new_session_path(tmp_path)
    keeper = SessionKeeper(Keeping(log=path))
    keeper.heard(PlayedBack(source="speakers", start=10 * SAMPLE_RATE, end=14 * SAMPLE_RATE))
    [played] = keeper.heard(final("speakers", 10.5, 13.5, "What I said before."))
    [other] = keeper.heard(final("speakers", 20, 22, "Someone else."))
    keeper.close()
    assert played.echo and not other.echo
    assert logged(path) == [("What I said before.", "", True), ("Someone else.", "", False)]


def test_with_the_echo_filter_a_mic_final_waits_for_the_speakers_final_it_overlaps(tmp_path):
    """Held while the speakers' utterance is open (nothing published, nothing logged), then
    published marked echo right after the speakers' Final, in that order."""
    path = new_session_path(tmp_path)
    keeper = SessionKeeper(Keeping(log=path, echo_filter=True))
    start = SpeechStart(source="speakers", start=2 * SAMPLE_RATE)
    assert keeper.heard(start) == [start]
    assert keeper.heard(timed("mic", 2.1, 5.0, "ask not what your country can do for you")) == []
    assert path.read_text() == ""
    end = SpeechEnd(source="speakers", start=2 * SAMPLE_RATE, end=9 * SAMPLE_RATE)
    assert keeper.heard(end) == [end]
    speakers, mic = keeper.heard(timed("speakers", 2.0, 9.0, SAID))
    assert speakers.source == "speakers" and mic.source == "mic" and mic.echo


def test_a_held_mic_final_is_kept_when_the_session_ends(tmp_path):
    path = new_session_path(tmp_path)
    keeper = SessionKeeper(Keeping(log=path, echo_filter=True))
    keeper.heard(SpeechStart(source="speakers", start=2 * SAMPLE_RATE))
    assert keeper.heard(timed("mic", 2.1, 5.0, "I think we should stop here")) == []
    [mic] = keeper.end()
    keeper.close()
    assert not mic.echo and logged(path) == [("I think we should stop here", "", False)]


def test_a_log_that_cannot_be_written_is_said_once_and_every_final_still_published(tmp_path):
    not_a_folder = tmp_path / "sessions"
    not_a_folder.write_text("a file where the sessions' folder should be")
    keeper = SessionKeeper(Keeping(log=new_session_path(not_a_folder)))
    first = keeper.heard(final("mic", 1, 2, "One."))
    second = keeper.heard(final("mic", 3, 4, "Two."))
    assert [f.text for f in first if isinstance(f, Final)] == ["One."]
    [warning] = [m for m in first if isinstance(m, ActorFailed)]
    assert warning.actor == "session-log" and "cannot write the session log" in warning.error
    assert [(type(m), m.text) for m in second] == [(Final, "Two.")]  # said once
