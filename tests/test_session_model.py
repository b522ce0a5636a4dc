"""The monitor's session without a screen (``tui/session_model``), message by message: what
is kept for save, a revision in its line's place with the selection following it, echo never
shown, a device gone and back, the pause, search order, what a retry must load, the d key,
and the pipeline's lifecycle."""

import pytest

from earwig.messages import (ActorFailed, ActorReady, DictationCommand, DictationState, Final, Level, ModelState,
                             Partial, PauseSource, SourceEnded, SourceState, Stats)
from earwig.tui.session_model import Found, Line, MeterSays, MonitorModel, Notice, PipelineLife, StatusShows

pytestmark = pytest.mark.pure


def final(text, start=16000, source="mic", **fields) -> Final:
    return Final(source=source, start=start, end=start + 16000, text=text, language="en", **fields)


def level(source="mic", rms_db=-20.0) -> Level:
    return Level(source=source, end=800, rms_db=rms_db, peak_db=-10.0, clipped=False)


def test_finals_are_kept_for_save_and_shown_and_the_partial_they_end_is_dropped():
    model = MonitorModel()
    model.heard(Partial(source="mic", start=16000, end=24000, committed="Hello", tentative="there"))
    line = final("Hello there.")
    assert model.heard(line) == [Line(line)]
    assert model.finals == [line] and model.frame() == ({}, {})
    silent = final("", start=48000)
    assert model.heard(silent) == [Line(silent)] and model.finals == [line]  # shown (its latency), not saved


def test_echo_is_neither_shown_nor_kept():
    model = MonitorModel()
    assert model.heard(final("What the speakers said.", echo=True)) == [] and model.finals == []


def test_a_revision_takes_its_lines_place_and_the_selection_follows_it():
    model = MonitorModel()
    first, second = final("Hello, their.", 16000), final("Bye.", 64000)
    model.heard(first)
    model.heard(second)
    model.selected = first
    revised = final("Hello there.", 16000, revised=True)
    effects = model.heard(revised)
    assert effects[0] == Line(revised) and isinstance(effects[1], Notice) and "Hello there." in effects[1].text
    assert model.finals == [revised, second] and model.selected is revised
    same = model.heard(final("Bye.", 64000, revised=True))
    assert "the same text" in same[1].text and model.selected is revised


def test_only_the_newest_level_and_partial_of_each_source_reach_a_frame():
    model = MonitorModel()
    model.heard(level("mic", -40.0))
    model.heard(level("mic", -30.0))
    model.heard(level("speakers", -25.0))
    levels, partials = model.frame()
    assert levels["mic"].rms_db == -30.0 and set(levels) == {"mic", "speakers"} and partials == {}
    assert model.frame() == ({}, {})


def test_a_paused_or_disconnected_source_shows_no_level_and_says_why():
    model = MonitorModel()
    told, says = model.pause("mic")
    assert told == PauseSource(source="mic", paused=True) and says == MeterSays("mic", "paused (m/s resumes)", True)
    model.heard(level("mic"))
    assert model.frame()[0] == {}
    told, says = model.pause("mic")
    assert not told.paused and says.text == "resumed" and not says.notice
    gone = model.heard(SourceState(source="speakers", connected=False, detail="unplugged"))
    assert gone[0] == MeterSays("speakers", "disconnected: waiting for it to come back", True)
    assert gone[1].severity == "warning" and "unplugged" in gone[1].text
    model.heard(level("speakers"))
    assert model.frame()[0] == {}
    assert model.heard(SourceState(source="speakers", connected=True, detail="back")) == [
        MeterSays("speakers", "reconnected")]
    model.heard(level("speakers"))
    assert set(model.frame()[0]) == {"speakers"}
    assert model.heard(SourceEnded(source="mic", end=100)) == [MeterSays("mic", "replay ended")]


def test_search_goes_from_the_newest_line_back_and_starts_again():
    model = MonitorModel()
    lines = [final(f"water the plants {n}", 16000 * (n + 1)) for n in range(3)]
    for line in lines:
        model.heard(line)
    model.heard(final("plants again", 200000, source="speakers", echo=True))  # echo: never found
    found = [model.search("PLANTS water") for _ in range(4)]
    assert [f.line for f in found] == [lines[2], lines[1], lines[0], lines[2]]
    assert found[0] == Found(lines[2], 2, 3)
    model.search_changed()
    assert model.search("plants").line == lines[2]
    assert model.search("nowhere").severity == "warning" and model.search("  ") is None


def test_a_retry_loads_its_model_first_unless_that_model_is_ready():
    model = MonitorModel()
    assert model.retry_loads_first("base")
    model.heard(ModelState(role="final", model="base", state="ready"))
    assert not model.retry_loads_first("base") and model.retry_loads_first("small")
    model.heard(ModelState(role="retry", model="small", state="loading"))
    assert model.retry_loads_first("small")
    effects = model.heard(ModelState(role="retry", model="small", state="ready"))
    assert effects == [StatusShows(ModelState(role="retry", model="small", state="ready"))]
    assert not model.retry_loads_first("small")


def test_the_d_key_turns_dictation_off_and_on_as_dictation_says_it_is():
    model = MonitorModel()
    assert model.dictation_toggled() == DictationCommand(action="enable")  # off until it says
    model.heard(DictationState(state="ready"))
    assert model.dictation_toggled() == DictationCommand(action="disable")
    held = model.heard(DictationState(state="held", detail="the focus moved"))
    assert held[1].severity == "warning" and "the focus moved" in held[1].text


def test_processes_counters_and_failures():
    model = MonitorModel()
    model.heard(ActorReady(actor="final", pid=42))
    model.heard(Stats(actor="mel", counters={"frames": 3.0}))
    model.heard(Stats(actor="mel", counters={"lost": 1.0}))
    assert model.pids == {"final": 42} and model.counters == {"mel": {"frames": 3.0, "lost": 1.0}}
    [notice] = model.heard(ActorFailed(actor="final", fatal=True, error="it broke", fix="do this"))
    assert notice.severity == "error" and notice.text == "it broke (do this)"


def test_copy_takes_the_selection_else_the_newest_line():
    model = MonitorModel()
    assert model.copied() is None
    first, second = final("One.", 16000), final("Two.", 48000)
    model.heard(first)
    model.heard(second)
    assert model.copied() is second
    model.selected = first
    assert model.copied() is first


def test_the_pipelines_lifecycle():
    alone = PipelineLife(pipeline=False)
    assert alone.state == "none" and alone.end() == "exit"
    life = PipelineLife(pipeline=True)
    assert life.began() and life.running
    assert life.end() == "stop" and life.state == "ending" and not life.running
    assert life.end() == "wait"  # q twice: still ending
    life.ended()
    assert life.end() == "exit"
    early = PipelineLife(pipeline=True)
    assert early.end() == "wait" and not early.began()  # q while starting: stopped once it runs
