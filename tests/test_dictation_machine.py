"""Dictation's decisions, event by event (``actors/dictation_machine``): hold and toggle,
commands, the text complete only once every utterance of the dictation has its Final, a
cancel, text joined to the last text typed into the same window, held text retried, a
crashed predecessor's dictation finished, a replayed mic that ended."""

import pytest

from earwig.actors.dictation_machine import (MIC_ENDED, Answer, Clipboard, Deliver, DictationMachine, Publish)
from earwig.config import DictationConfig
from earwig.messages import DictationSpan, DictationStart, DictationState, DictationStop, Final, Retry

pytestmark = pytest.mark.pure

WINDOW = 42


def machine(mode="hold", hotkey=True, desktop=True, **settings) -> DictationMachine:
    return DictationMachine(DictationConfig(mode=mode, **settings), hotkey=hotkey, desktop=desktop)


def final(start, end, text, revised=False) -> Final:
    return Final(source="mic", start=start, end=end, text=text, language="en", revised=revised)


def published(effects) -> list:
    return [effect.message for effect in effects if isinstance(effect, Publish)]


def phases(effects) -> list[str]:
    return [m.state for m in published(effects) if isinstance(m, DictationState)]


def dictate(m: DictationMachine, start: int, end: int, *texts: str, now: float = 0.0) -> list:
    """Press, release, the mel actor's span of len(texts) utterances, and their Finals."""
    m.key_down(start, WINDOW)
    m.key_up(end)
    effects = m.closed(DictationSpan(start=start, end=end, utterances=len(texts)), now)
    step = (end - start) // max(1, len(texts))
    for i, text in enumerate(texts):
        effects += m.heard(final(start + i * step, start + (i + 1) * step, text), now)
    return effects


def test_hold_to_talk_publishes_the_span_and_delivers_once_every_utterance_has_its_final():
    m = machine()
    ready = m.ready()
    assert phases(ready) == ["ready"] and published(ready)[0].detail.startswith("hold ")
    down = m.key_down(1000, WINDOW)
    assert published(down)[0] == DictationStart(start=1000) and phases(down) == ["listening"]
    up = m.key_up(33000)
    assert published(up)[0] == DictationStop(start=1000, end=33000, cancel=False) and phases(up) == ["transcribing"]
    assert m.closed(DictationSpan(start=1000, end=33000, utterances=2), 0.0) == []
    assert m.heard(final(1000, 16000, "Hello there."), 0.0) == []  # one of two
    [deliver] = m.heard(final(17000, 33000, "How are you?"), 0.0)
    assert deliver == Deliver("Hello there. How are you?", WINDOW, deliver.finals) and len(deliver.finals) == 2
    done = m.delivered(deliver, held="", now=1.0)
    assert phases(done) == ["delivered"] and Answer(DictationState(state="delivered", text=deliver.text)) in done


def test_the_finals_may_come_before_the_span_says_how_many_there_are():
    m = machine()
    m.key_down(0, WINDOW)
    m.key_up(16000)
    assert m.heard(final(0, 16000, "Early."), 0.0) == []
    [deliver] = m.closed(DictationSpan(start=0, end=16000, utterances=1), 0.0)
    assert deliver.text == "Early."


def test_a_final_outside_the_dictation_is_not_part_of_it():
    m = machine()
    m.key_down(16000, WINDOW)
    m.key_up(32000)
    m.closed(DictationSpan(start=16000, end=32000, utterances=1), 0.0)
    assert m.heard(final(0, 15000, "Said before the key."), 0.0) == []
    [deliver] = m.heard(final(16000, 32000, "Said with it."), 0.0)
    assert deliver.text == "Said with it."


def test_toggle_mode_ends_at_the_second_press_and_ignores_the_release():
    m = machine(mode="toggle")
    assert phases(m.key_down(0, WINDOW)) == ["listening"]
    assert m.key_up(100) == []
    assert published(m.key_down(16000, WINDOW))[0] == DictationStop(start=0, end=16000, cancel=False)


def test_a_cancelled_dictation_types_nothing():
    m = machine()
    m.key_down(0, WINDOW)
    effects, waits = m.command("cancel", 16000, None)
    assert published(effects)[0] == DictationStop(start=0, end=16000, cancel=True) and not waits
    effects = m.closed(DictationSpan(start=0, end=16000, utterances=1), 0.0)
    effects += m.heard(final(0, 16000, "Never mind."), 0.0)
    assert not any(isinstance(e, Deliver) for e in effects)
    assert m.state == DictationState(state="ready", detail="cancelled")


def test_no_speech_heard_types_nothing_and_says_so():
    m = machine()
    m.key_down(0, WINDOW)
    m.key_up(8000)
    effects = m.closed(DictationSpan(start=0, end=8000, utterances=0), 0.0)
    assert not any(isinstance(e, Deliver) for e in effects)
    assert m.state.state == "delivered" and "no speech" in m.state.detail


def test_ctl_stop_waits_for_the_text_and_start_does_not():
    m = machine()
    effects, waits = m.command("start", 0, WINDOW)
    assert phases(effects) == ["listening"] and not waits
    effects, waits = m.command("stop", 16000, None)
    assert phases(effects) == ["transcribing"] and waits
    assert m.command("stop", 17000, None) == ([], False)  # nothing is listening now


def test_one_dictation_at_a_time():
    m = machine(mode="toggle")
    m.key_down(0, WINDOW)
    assert m.command("start", 100, WINDOW) == ([], False)
    assert not m.would_begin("start") and not m.would_begin("key_down")


def test_the_next_text_into_the_same_window_soon_after_continues_it():
    m = machine(join_within_s=10.0)
    [deliver] = dictate(m, 0, 16000, "Hello there.", now=0.0)
    m.delivered(deliver, held="", now=1.0)
    [second] = dictate(m, 32000, 48000, "And then some.", now=5.0)
    assert second.text.startswith(" ") and "And then some." in second.text
    m.delivered(second, held="", now=6.0)
    [later] = dictate(m, 64000, 80000, "A new thought.", now=60.0)
    assert later.text == "A new thought."


def test_held_text_is_retried_and_the_revision_held_on_the_clipboard():
    m = machine()
    [deliver] = dictate(m, 0, 32000, "Hello", "their.")
    held = m.delivered(deliver, held="the focus moved", now=1.0)
    assert phases(held) == ["held"] and [f.text for f in m.held] == ["Hello", "their."]
    effects, answer = m.retry(audio_kept=True)
    retries = [msg for msg in published(effects) if isinstance(msg, Retry)]
    assert answer is None and [(r.start, r.end) for r in retries] == [(0, 16000), (16000, 32000)]
    assert retries[1].prompt == "Hello"
    assert m.heard(final(0, 16000, "Hello", revised=True), 2.0) == []
    effects = m.heard(final(16000, 32000, "there.", revised=True), 2.0)
    assert Clipboard("Hello there.") in effects and phases(effects) == ["held"]
    assert any(isinstance(e, Answer) and e.state.text == "Hello there." for e in effects)


def test_retry_says_why_it_cannot():
    m = machine()
    assert m.retry(audio_kept=True)[1].state == "failed"  # nothing held
    [deliver] = dictate(m, 0, 16000, "Hello.")
    m.delivered(deliver, held="the focus moved", now=1.0)
    effects, answer = m.retry(audio_kept=False)
    assert effects == [] and answer.state == "failed" and "ring_seconds" in answer.detail


def test_a_crashed_predecessors_dictation_is_ended_and_its_text_held_for_an_unknown_window():
    m = machine()
    effects = m.resume(DictationStart(start=1000), position=40000)
    assert published(effects)[0] == DictationStop(start=1000, end=40000, cancel=False)
    m.closed(DictationSpan(start=1000, end=40000, utterances=1), 0.0)
    [deliver] = m.heard(final(1000, 40000, "Still mine."), 0.0)
    assert deliver.window is None


def test_the_users_cancel_before_the_crash_is_kept():
    m = machine()
    m.resume(DictationStart(start=1000), position=40000)
    m.resume(DictationStop(start=1000, end=30000, cancel=True), position=40000)
    m.closed(DictationSpan(start=1000, end=40000, utterances=1), 0.0)
    effects = m.heard(final(1000, 30000, "Scrap that."), 0.0)
    assert not any(isinstance(e, Deliver) for e in effects) and m.state.detail == "cancelled"


def test_the_hotkey_turned_off_is_ignored_until_turned_on():
    m = machine()
    effects, _ = m.command("disable", 0, None)
    assert phases(effects) == ["off"] and m.key_down(100, WINDOW) == [] and not m.would_begin("key_down")
    effects, _ = m.command("enable", 200, None)
    assert phases(effects) == ["ready"] and phases(m.key_down(300, WINDOW)) == ["listening"]


def test_a_replayed_mic_that_ended_refuses_a_new_dictation():
    m = machine()
    assert m.mic_ended() == [Publish(DictationState(state="off", detail=MIC_ENDED))]
    assert phases(m.key_down(0, WINDOW)) == ["failed"]


def test_without_a_desktop_a_retried_text_is_answered_not_put_on_a_clipboard():
    m = machine(desktop=False)
    [deliver] = dictate(m, 0, 16000, "Hello.")
    m.delivered(deliver, held="no desktop to type into", now=1.0)
    m.retry(audio_kept=True)
    effects = m.heard(final(0, 16000, "Hello!", revised=True), 2.0)
    assert not any(isinstance(e, Clipboard) for e in effects) and m.state.text == "Hello!"
