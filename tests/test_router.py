"""The supervisor's router, message by message: who gets what, the lasting facts a restarted
actor is told again (in order), the final actor's redo and a second answer dropped."""

from __future__ import annotations

import msgspec
import pytest

from earwig.actors.runtime import ActorSpec
from earwig.config import Config, SourceConfig
from earwig.messages import (DictationSpan, DictationStart, DictationStop, Final, Partial, PauseSource, Retry,
                             SourceEnded, SpeechEnd, SpeechPause, SpeechStart)
from earwig.actors.dictation_desktops import DesktopChoice
from earwig.supervisor.plan import transcription_plan, with_dictation
from earwig.supervisor.router import RECENT_FINALS, Router

pytestmark = pytest.mark.pure

MEL = ActorSpec("mel", "m", listens=frozenset({SourceEnded, SpeechStart, SpeechEnd, DictationStart, DictationStop}))
CAPTURE = ActorSpec("capture-mic", "c", listens=frozenset({PauseSource}))
FINAL = ActorSpec("final", "f", listens=frozenset({SpeechStart, SpeechPause, SpeechEnd, Partial}))
PREVIEW = ActorSpec("preview", "p", listens=frozenset({SpeechStart, SpeechEnd, Final}))
RETRYING_FINAL = ActorSpec("final", "f", listens=frozenset({SpeechStart, SpeechEnd, Retry}))


def router() -> Router:
    return Router([CAPTURE, MEL, FINAL, PREVIEW])


def test_a_message_goes_to_the_actors_that_listen_for_its_type_never_back_to_its_sender():
    book = router()
    assert book.heard(SpeechStart(source="mic", start=0), sender="mel") == ["final", "preview"]
    assert book.heard(Partial(source="mic", start=0, end=10, committed="a", tentative=""), sender="preview") == ["final"]
    assert book.heard(PauseSource(source="mic", paused=True)) == ["capture-mic"]
    assert book.heard(SpeechStart(source="mic", start=0), sender="final") == ["mel", "preview"]


def test_lasting_facts_are_told_again_in_the_order_they_became_true():
    book = router()
    book.heard(PauseSource(source="mic", paused=True))
    book.heard(SpeechStart(source="speakers", start=5), sender="mel")
    book.heard(SpeechStart(source="mic", start=9), sender="mel")
    book.heard(SourceEnded(source="speakers", end=100), sender="capture-speakers")
    book.heard(SpeechEnd(source="mic", start=9, end=50), sender="mel")  # the mic's utterance is over
    assert book.told_again("mel") == [SpeechStart(source="speakers", start=5),
                                      SourceEnded(source="speakers", end=100),
                                      SpeechEnd(source="mic", start=9, end=50)]
    assert book.told_again("capture-mic") == [PauseSource(source="mic", paused=True)]
    book.heard(PauseSource(source="mic", paused=False))  # a newer fact of the same kind replaces it
    assert book.told_again("capture-mic") == [PauseSource(source="mic", paused=False)]


def test_the_last_utterance_ended_is_told_again_to_the_mel_actor_alone():
    """The mel actor's VAD resumes after it; the model actors would take it for an
    utterance owed again."""
    book = router()
    for start, end in ((0, 10), (20, 30)):
        book.heard(SpeechStart(source="mic", start=start), sender="mel")
        book.heard(SpeechEnd(source="mic", start=start, end=end), sender="mel")
        book.answered(Final(source="mic", start=start, end=end, text="said", language="en"))
    book.heard(SpeechStart(source="mic", start=40), sender="mel")
    assert book.told_again("mel") == [SpeechEnd(source="mic", start=20, end=30), SpeechStart(source="mic", start=40)]
    assert not any(isinstance(m, SpeechEnd) for m in book.told_again("final") + book.told_again("preview"))


def test_a_dictation_is_lasting_until_the_mel_actor_closes_its_span():
    book = router()
    book.heard(DictationStart(start=10), sender="dictation")
    book.heard(DictationStop(start=10, end=90), sender="dictation")
    assert book.told_again("mel") == [DictationStart(start=10), DictationStop(start=10, end=90)]
    assert not book.quiet
    book.heard(DictationSpan(start=10, end=90, utterances=1), sender="mel")
    assert book.told_again("mel") == [] and book.quiet


def test_the_final_actor_is_told_its_recent_finals_then_what_it_still_owes():
    book = router()
    book.heard(SpeechStart(source="mic", start=0), sender="mel")
    first, second = SpeechEnd(source="mic", start=0, end=10), SpeechEnd(source="mic", start=20, end=30)
    book.heard(first, sender="mel")
    book.heard(SpeechStart(source="mic", start=20), sender="mel")
    book.heard(second, sender="mel")
    answer = Final(source="mic", start=0, end=10, text="hello", language="en")
    assert book.answered(answer)
    assert book.told_again("final") == [answer, second]
    assert not book.quiet  # the second SpeechEnd still owes its Final


def test_a_second_answer_to_the_same_speech_end_is_dropped():
    book = router()
    book.heard(SpeechEnd(source="mic", start=0, end=10), sender="mel")
    assert book.answered(Final(source="mic", start=0, end=10, text="hello", language="en"))
    assert not book.answered(Final(source="mic", start=0, end=10, text="hello", language="en"))
    assert not book.answered(Final(source="mic", start=5, end=10, text="never asked for", language="en"))
    assert book.quiet


def test_only_the_recent_finals_of_each_source_are_kept_for_a_restart():
    book = router()
    for n in range(RECENT_FINALS + 3):
        book.heard(SpeechEnd(source="speakers", start=n * 10, end=n * 10 + 5), sender="mel")
        book.answered(Final(source="speakers", start=n * 10, end=n * 10 + 5, text=str(n), language="en"))
    assert [f.text for f in book.told_again("final")] == [str(n) for n in range(3, RECENT_FINALS + 3)]


def test_speech_wakes_an_evicted_listener_and_counts_as_activity():
    book = router()
    assert Router.wakes(SpeechStart(source="mic", start=0)) and Router.wakes(DictationStart(start=0))
    assert not Router.wakes(SpeechPause(source="mic", start=0, end=5))
    book.heard(SpeechStart(source="mic", start=0), sender="mel", now=42.0)
    book.heard(SpeechPause(source="mic", start=0, end=5), sender="mel", now=50.0)
    assert book.last_activity == 42.0 and not book.quiet


def test_an_actor_listening_to_what_is_not_a_message_type_is_refused():
    with pytest.raises(TypeError, match="not message types"):
        ActorSpec("typo", "m", listens=frozenset({"SpeechStart"}))


def test_the_plan_subscribes_every_actor_to_the_types_its_module_declares(tmp_path):
    """The plan reads each actor module's LISTENS; the router routes exactly those."""
    from earwig.actors import capture, dictation, final, mel, preview
    config = Config(mic=SourceConfig(replay="x.wav"), speakers=SourceConfig(enabled=False))
    plan = with_dictation(transcription_plan(config, "t-"), config, "t-", str(tmp_path / "s"), desktop=DesktopChoice(""))
    modules = {"capture-mic": capture, "mel": mel, "preview": preview, "final": final, "dictation": dictation}
    assert {spec.name: spec.listens for spec in plan.actors} == \
        {name: frozenset(module.LISTENS) for name, module in modules.items()}
    routes = Router(plan.actors)
    assert routes.heard(SpeechEnd(source="mic", start=0, end=5), sender="mel") == ["preview", "final"]
    assert routes.heard(Final(source="mic", start=0, end=5, text="", language="en"), sender="final") == ["preview", "dictation"]
    # The mel actor closes the utterance, the final actor answers it, the dictation delivers it.
    assert {spec.name: spec.shutdown_step for spec in plan.actors if spec.shutdown_step} == {"final": 1, "dictation": 2}


def test_a_retry_wakes_the_evicted_final_actor_and_its_revision_is_no_second_answer():
    book = Router([MEL, RETRYING_FINAL])
    retry = Retry(source="mic", start=0, end=16000)
    assert book.wakes(retry) and book.heard(retry, sender="monitor", now=42.0) == ["final"]
    assert book.last_activity == 42.0  # it counts as use: the model is not evicted under it
    book.heard(SpeechEnd(source="mic", start=0, end=16000), sender="mel")
    first = Final(source="mic", start=0, end=16000, text="a", language="en")
    assert book.answered(first) and not book.answered(first)
    assert book.answered(msgspec.structs.replace(first, text="A.", revised=True))  # logged and shown too
    assert book.told_again("final") == [first]  # a restart's context is what was said live
