"""The final actor's ledger, message by message: speculation kept and abandoned, the order
Finals are published in, a restart's redo, and what the decoder is told."""

from __future__ import annotations

import pytest

from earwig.actors.final_ledger import FinalLedger, Utterance
from earwig.messages import Final, Partial, Retry

pytestmark = pytest.mark.pure

SECOND = 16000


def final_of(utterance: Utterance, text: str) -> Final:
    return Final(source=utterance.source, start=utterance.start, end=utterance.end, text=text, language="en")


def ledger() -> FinalLedger:
    book = FinalLedger(max_window=30 * SECOND)
    book.speech_started("mic", 0)
    return book


def test_a_guess_on_a_pause_is_kept_when_its_speech_end_confirms_it():
    book = ledger()
    book.paused("mic", 0, 3 * SECOND, now_ns=10)
    batch = book.next_batch()
    assert batch.speculative and [j.utterance for j in batch.jobs] == [Utterance("mic", 0, 3 * SECOND)]
    book.record(batch.jobs[0].utterance, final_of(batch.jobs[0].utterance, "hello there"), 0.0)
    assert book.due() == []  # not confirmed yet: nothing is published
    book.ended("mic", 0, 3 * SECOND, now_ns=20)
    assert book.next_batch() is None  # the guess is the answer: no second pass
    assert [f.text for f in book.due()] == ["hello there"]
    assert book.counters["speculative_used"] == 1 and book.counters["finals"] == 1
    assert not book.owes


def test_speech_resuming_abandons_the_guess_in_flight_and_the_end_is_transcribed_again():
    book = ledger()
    book.paused("mic", 0, 3 * SECOND, now_ns=10)
    batch = book.next_batch()
    assert book.resumed("mic")  # the only guess in flight is void: abandon the pass
    book.abandoned()
    book.ended("mic", 0, 5 * SECOND, now_ns=30)
    redo = book.next_batch()
    assert not redo.speculative and [j.utterance for j in redo.jobs] == [Utterance("mic", 0, 5 * SECOND)]
    assert redo.jobs[0].ready_ns == 30  # ready when it ended, not at the void pause
    assert book.counters["speculative_abandoned"] == 1 and batch.speculative


def test_a_resume_of_one_source_keeps_a_batch_that_guesses_the_other_too():
    book = ledger()
    book.paused("mic", 0, SECOND * 3, now_ns=1)
    book.paused("speakers", 0, SECOND * 4, now_ns=2)
    batch = book.next_batch()
    assert len(batch.jobs) == 2
    assert not book.resumed("mic")  # the speakers' guess is still wanted
    assert book.resumed("speakers")


def test_a_guess_that_finished_after_speech_resumed_is_never_published():
    book = ledger()
    book.paused("mic", 0, 3 * SECOND, now_ns=1)
    guess = book.next_batch().jobs[0].utterance
    book.resumed("mic")
    book.record(guess, final_of(guess, "stale words"), 0.0)
    book.paused("mic", 0, 6 * SECOND, now_ns=2)  # a new pause forgets the old guess
    book.ended("mic", 0, 6 * SECOND, now_ns=3)
    jobs = book.next_batch().jobs
    assert [j.utterance for j in jobs] == [Utterance("mic", 0, 6 * SECOND)]
    book.record(jobs[0].utterance, final_of(jobs[0].utterance, "the whole sentence"), 0.0)
    assert [f.text for f in book.due()] == ["the whole sentence"]


def test_finals_are_published_in_the_order_their_utterances_ended():
    book = ledger()
    first, second = Utterance("speakers", 0, SECOND * 3), Utterance("mic", SECOND, SECOND * 4)
    book.ended(first.source, first.start, first.end, now_ns=1)
    book.ended(second.source, second.start, second.end, now_ns=2)
    assert [j.utterance for j in book.next_batch().jobs] == [first, second]
    book.record(second, final_of(second, "mic words"), 0.0)
    assert book.due() == []  # the speakers' utterance ended first and has no Final yet
    book.record(first, final_of(first, "speaker words"), 0.0)
    assert [f.text for f in book.due()] == ["speaker words", "mic words"]


def test_a_stopping_actor_transcribes_what_it_owes_but_guesses_nothing():
    book = ledger()
    book.paused("mic", 0, 3 * SECOND, now_ns=1)
    assert book.next_batch(stopping=True) is None
    book.ended("mic", 0, 3 * SECOND, now_ns=2)
    assert book.next_batch(stopping=True).jobs[0].utterance == Utterance("mic", 0, 3 * SECOND)


def test_utterances_left_to_a_server_are_not_read_locally_and_its_answer_is_taken_once():
    book = ledger()
    first, second = Utterance("mic", 0, 2 * SECOND), Utterance("mic", 3 * SECOND, 5 * SECOND)
    book.ended("mic", first.start, first.end, now_ns=1)
    book.ended("mic", second.start, second.end, now_ns=2)
    assert book.unanswered() == [first, second]
    batch = book.next_batch(waiting=frozenset({first}))
    assert [j.utterance for j in batch.jobs] == [second]  # the server has the first for now
    assert book.owed(first)
    book.record(first, final_of(first, "from the server"), 0.0)
    assert not book.owed(first)  # a local answer that comes later is not wanted
    assert book.unanswered() == [second]
    assert [f.text for f in book.due()] == ["from the server"]
    assert not book.owed(first)  # published: no longer owed either


def test_no_guess_is_read_while_a_server_writes_the_text():
    book = ledger()
    book.paused("mic", 0, 3 * SECOND, now_ns=1)
    assert book.next_batch(speculate=False) is None
    assert book.next_batch().speculative


def test_a_server_reads_each_sources_guess_until_speech_resumes_and_its_answer_is_the_final():
    book = ledger()
    guess = Utterance("mic", 0, 3 * SECOND)
    book.paused("mic", guess.start, guess.end, now_ns=1)
    assert book.guesses() == [guess] and book.wanted(guess)
    book.resumed("mic")
    assert book.guesses() == [] and not book.wanted(guess)  # its request is void
    longer = Utterance("mic", 0, 5 * SECOND)
    book.paused("mic", longer.start, longer.end, now_ns=2)
    book.record(longer, final_of(longer, "from the server"), 0.0)  # answered before the SpeechEnd
    assert book.guesses() == [] and not book.wanted(longer)  # a second answer is not wanted
    assert book.due() == []
    book.ended("mic", longer.start, longer.end, now_ns=3)
    assert book.next_batch(speculate=False) is None  # nothing left to read locally
    assert [f.text for f in book.due()] == ["from the server"]
    assert book.counters["speculative_used"] == 1


def test_a_restarted_actor_redoes_the_unanswered_utterance_with_the_context_it_had():
    """After a kill the supervisor sends the recent Finals, then the SpeechEnds still owed."""
    book = FinalLedger(max_window=30 * SECOND)
    book.recalled(Final(source="mic", start=0, end=3 * SECOND, text="And so, my fellow Americans,", language="en"))
    book.speech_started("mic", 4 * SECOND)
    book.ended("mic", 4 * SECOND, 8 * SECOND, now_ns=5)
    job = book.next_batch().jobs[0]
    assert job.utterance == Utterance("mic", 4 * SECOND, 8 * SECOND)
    assert job.context == "And so, my fellow Americans,"


def test_the_preview_text_is_the_draft_until_the_utterance_is_published():
    book = ledger()
    book.drafted(Partial(source="mic", start=0, end=SECOND * 3, committed="ask not", tentative="what"))
    book.ended("mic", 0, 3 * SECOND, now_ns=1)
    job = book.next_batch().jobs[0]
    assert job.draft == "ask not what"
    book.record(job.utterance, final_of(job.utterance, "Ask not what"), 0.0)
    book.due()
    book.ended("mic", 4 * SECOND, 7 * SECOND, now_ns=2)
    assert book.next_batch().jobs[0].draft == ""  # the published utterance's draft is gone


def after_a_sentence() -> FinalLedger:
    """A ledger that has published the mic's Final of its first 3 s."""
    book = ledger()
    book.ended("mic", 0, 3 * SECOND, now_ns=1)
    first = book.next_batch().jobs[0].utterance
    book.record(first, final_of(first, "ask not what your country can do for you,"), 0.0)
    book.due()
    return book


def test_a_fragment_is_read_with_the_utterance_before_it_and_its_text_as_the_draft():
    book = after_a_sentence()
    book.ended("mic", 3 * SECOND + 8000, 4 * SECOND, now_ns=2)  # 0.5 s: a fragment
    job = book.next_batch().jobs[0]
    assert job.reading.read_from == 0 and job.reading.own_from == 3 * SECOND
    assert job.draft == "ask not what your country can do for you,"


def test_an_unheard_stretch_is_read_alone_and_a_fragment_after_it_does_not_reach_into_it():
    book = after_a_sentence()
    book.ended("mic", 3 * SECOND, 4 * SECOND + 8000, now_ns=2, heard=False)  # as short as a fragment
    book.ended("mic", 4 * SECOND + 8000, 5 * SECOND, now_ns=3)  # a fragment, its Final after the stretch's
    unheard, fragment = book.next_batch().jobs
    assert not unheard.utterance.heard and unheard.reading.read_from == unheard.reading.own_from == 3 * SECOND
    assert unheard.draft == ""  # not the speech before it
    assert fragment.reading.read_from >= unheard.utterance.end  # never the stretch's audio twice


def test_a_fragment_after_an_unheard_stretchs_final_is_not_joined_to_it():
    """Once the stretch's Final has come, a fragment right after it is still read without the
    stretch's audio: joined, its pass would read the stretch's words again."""
    book = after_a_sentence()
    book.ended("mic", 3 * SECOND, 4 * SECOND + 8000, now_ns=2, heard=False)
    stretch = book.next_batch().jobs[0].utterance
    book.record(stretch, final_of(stretch, "printing in the only sense,"), 0.0)
    assert [f.text for f in book.due()] == ["printing in the only sense,"]
    book.ended("mic", 4 * SECOND + 8000, 5 * SECOND, now_ns=3)  # a fragment
    fragment = book.next_batch().jobs[0]
    assert fragment.reading.read_from >= stretch.end and fragment.draft == ""


def test_nothing_is_transcribed_before_speech_began():
    book = FinalLedger(max_window=30 * SECOND)
    assert not book.model_needed and book.next_batch() is None
    book.ended("mic", 0, SECOND, now_ns=1)
    assert book.model_needed and book.owes


def test_the_oldest_sample_still_needed_follows_open_and_owed_utterances():
    """What the final actor holds in the frame rings, so a fast replay waits for it: the
    start of its oldest utterance still open or owed, less a window read before it."""
    book = FinalLedger(max_window=5 * SECOND)
    assert book.oldest_needed("mic") is None  # nothing heard: nothing held
    book.speech_started("mic", 3 * SECOND)
    assert book.oldest_needed("mic") == 0 and book.oldest_needed("speakers") is None
    book.ended("mic", 3 * SECOND, 6 * SECOND, now_ns=1)
    book.speech_started("mic", 40 * SECOND)
    assert book.oldest_needed("mic") == 0  # the first is owed still
    first = book.next_batch().jobs[0].utterance
    book.record(first, final_of(first, "one"), 0.0)
    book.due()
    assert book.oldest_needed("mic") == 35 * SECOND  # now the open one, a window before it
    book.ended("mic", 40 * SECOND, 45 * SECOND, now_ns=2)
    second = book.next_batch().jobs[0].utterance
    book.record(second, final_of(second, "two"), 0.0)
    book.due()
    assert book.oldest_needed("mic") is None


def test_a_retry_waits_for_the_live_text_and_is_read_once_however_often_asked():
    book = ledger()
    book.ended("mic", 0, 3 * SECOND, now_ns=10)
    book.retry_asked(Retry(source="mic", start=SECOND * 60, end=SECOND * 63, prompt="old"))
    book.retry_asked(Retry(source="mic", start=SECOND * 60, end=SECOND * 63, prompt="newer"))
    assert book.next_retry() is None  # an utterance waits for its Final: it goes first
    batch = book.next_batch()
    book.record(batch.jobs[0].utterance, final_of(batch.jobs[0].utterance, "live"), 0.0)
    assert book.next_retry(stopping=True) is None  # asked as the session ends: not waited for
    retry = book.next_retry()
    assert (retry.start, retry.prompt) == (SECOND * 60, "newer")
    assert book.next_retry() is None
