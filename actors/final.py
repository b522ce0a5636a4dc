"""The final actor: finished utterances in, the text that is kept (Final) out.

receive  SpeechStart or DictationStart (the first one loads the model), SpeechPause (the
         VAD's hangover began: transcribe early, speculatively), SpeechResume (it was only a
         pause: drop the guess), SpeechEnd (the utterance is confirmed), Partial (the preview's text:
         the draft the decoder checks, ``decoding.draft``), Final (after a restart, the
         supervisor's copies of what this actor published before: its context), Retry
         (the user asked for a line again: it waits for the live text, ``final_retry``)
compute  ``decoding.transcribe`` over every pending utterance of both sources at once
         (one encoder batch), each read with what its source said before it (the text as
         a prompt; a fragment also with the audio before it: ``final_context``), then the
         hallucination filter (``decoding.hallucinations``)
publish  exactly one Final per SpeechEnd, in order (empty text when nothing survived the
         filter, so a listener can retire the utterance's partial text); a revised Final per
         Retry, or an ActorFailed saying why the line cannot be read again; ModelState; Stats

What is owed, what to transcribe next and which Finals are due is decided by
``final_ledger.FinalLedger`` from the messages alone; this module loads the model, reads
the frames and runs the decoder. With a transcription server (``server.url``), each
confirmed utterance is sent there first and this machine's model is the fallback
(``final_served``, ``final_route``): it reads what the server fails or is late to answer,
and a line asked for again while the server is down.

Why speculate: the VAD waits ``min_silence_ms`` (500 ms) before it calls speech ended. The
final pass starts when that wait begins; when the SpeechEnd with the same start and end
arrives, the text is ready or nearly so. If speech resumed, the early result is dropped,
and a guess still being transcribed is abandoned at its next decoder pass, so that the
cores go to the next pause's guess (natural speech pauses often, briefly, mid-sentence).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import msgspec

from earwig.actors.final_ledger import Batch, FinalLedger, Utterance
from earwig.actors.final_retry import line_samples, retried
from earwig.actors.final_served import ServedFinals
from earwig.actors.model_session import ModelParams, ModelSession
from earwig.actors.runtime import Actor
from earwig.decoding.draft import Abandoned
from earwig.decoding.hallucinations import kept_final
from earwig.config import SAMPLE_RATE
from earwig.decoding.transcribe import Window, compile_alignment, transcribe
from earwig.errors import EarwigError
from earwig.export import clock
from earwig.messages import (ActorFailed, DictationStart, Final, Partial, Retry, SpeechEnd, SpeechPause, SpeechResume,
                             SpeechStart, Stamps, Stats)

LISTENS = (SpeechStart, DictationStart, SpeechPause, SpeechResume, SpeechEnd, Partial, Final, Retry)


async def main(actor: Actor) -> None:
    params: ModelParams = actor.params
    session = ModelSession(actor, params, warm_up=compile_alignment, holds=True)
    ledger = FinalLedger(params.max_window)
    #: Set by every message that may give the ledger something to do.
    changed = asyncio.Event()
    #: Read by the decoding thread between decoder passes: the guesses in flight are void.
    abandon = threading.Event()

    def hold() -> None:
        """Hold in the frame rings what the ledger may still read, at once: a fast replay's
        mel actor must not run past a new utterance while a batch is being transcribed."""
        for source in session.rings:
            session.hold(source, ledger.oldest_needed(source))

    def woken(record):
        """The ledger records the message; the transcribing loop looks at it again."""
        def handle(message) -> None:
            record(message)
            hold()
            changed.set()
        return handle

    def resumed(message: SpeechResume) -> None:
        if ledger.resumed(message.source):  # the guesses in flight are void: stop decoding them
            abandon.set()

    served = ServedFinals(actor, params, ledger, changed, lambda: _publish(actor, ledger)) \
        if params.server is not None else None

    def ended(message: SpeechEnd) -> None:
        ledger.ended(message.source, message.start, message.end, now(), message.heard)
        if served is not None and message.heard:  # an unheard stretch is read here (``final_served``)
            served.ended(Utterance(message.source, message.start, message.end))

    now = time.monotonic_ns
    handlers = {
        SpeechStart: woken(lambda m: ledger.speech_started(m.source, m.start)),
        DictationStart: woken(lambda m: ledger.speech_started("mic", m.start)),
        SpeechPause: woken(lambda m: ledger.paused(m.source, m.start, m.end, now())),
        SpeechResume: woken(resumed),
        SpeechEnd: woken(ended),
        Partial: ledger.drafted,
        Final: ledger.recalled,
        Retry: woken(ledger.retry_asked),
    }
    try:
        await actor.serve(handlers, _until_all_answered(actor, session, ledger, changed, abandon, hold, served))
    finally:
        if served is not None:
            await served.close()
        session.close()


async def _until_all_answered(actor: Actor, session: ModelSession, ledger: FinalLedger, changed: asyncio.Event,
                              abandon: threading.Event, hold: Callable[[], None], served: ServedFinals | None) -> None:
    """Until Shutdown, and then until every confirmed utterance has its Final. With a
    server, each confirmed utterance goes there first, and the local model reads what it
    leaves (``final_served``); when stopping, the local model reads everything owed."""
    while True:
        _publish(actor, ledger)
        hold()
        stopping = actor.stopping.is_set()
        if stopping and not ledger.owes:
            return
        waiting = _left_to_server(served, stopping)
        if ledger.model_needed and session.model is None:
            await session.ready_model()
            waiting = _left_to_server(served, stopping)  # what ended while the model loaded goes too
        batch = ledger.next_batch(stopping=stopping, waiting=waiting,
                                  speculate=served is None or not served.route.up) if ledger.model_needed else None
        retry = ledger.next_retry(stopping=actor.stopping.is_set()) if batch is None else None
        if retry is not None:
            started_ns = time.monotonic_ns()
            outcome = await _retry(session, retry, served)
            ledger.counters["retries"] += 1
            ledger.counters["retry_s"] += (time.monotonic_ns() - started_ns) / 1e9
            _publish_retry(actor, retry, outcome, ledger)
            continue
        if batch is None:
            session.idle()
            await actor.stopping_or(changed, timeout=served.next_turn_s() if served is not None else None)
            continue
        abandon.clear()
        await _transcribe(session, ledger, batch, abandon, served)


def _left_to_server(served: ServedFinals | None, stopping: bool) -> frozenset[Utterance]:
    """Sends the server what it is owed; the utterances the local model leaves to it for now.
    Asked again after a model load (only then: it is asked once a turn otherwise): utterances
    end during it, and one the local model is not told to leave would be read here at once,
    the server up or not."""
    if served is None or stopping:
        return frozenset()
    served.send()
    return served.waiting()


# --- compute ------------------------------------------------------------------------------


async def _transcribe(session: ModelSession, ledger: FinalLedger, batch: Batch, abandon: threading.Event,
                      served: ServedFinals | None) -> None:
    frames = [await session.frames(job.utterance.source, job.reading.read_from, job.utterance.end)
              for job in batch.jobs]
    windows = [Window(f, context=job.context, draft=job.draft, speech_heard=job.utterance.heard)
               for f, job in zip(frames, batch.jobs)]
    started_ns = time.monotonic_ns()
    try:
        transcripts = await asyncio.to_thread(transcribe, session.loaded, windows, abandoned=abandon.is_set,
                                              reread_below_db=session.params.reread_below_db)
    except Abandoned:
        ledger.abandoned()
        return
    finally:
        ledger.counters["transcribe_s"] += (time.monotonic_ns() - started_ns) / 1e9
    ended_ns = time.monotonic_ns()
    for job, transcript, window in zip(batch.jobs, transcripts, frames):
        u, reading = job.utterance, job.reading
        if not batch.speculative and not ledger.owed(u):
            continue  # the server's answer came first
        if served is not None and not batch.speculative:
            served.answered_locally(u, (u.end - u.start) / SAMPLE_RATE, (ended_ns - started_ns) / 1e9)
        captured_ns = session.captured_ns(u.source, reading.read_from, len(window))
        stamps = Stamps(captured_ns=captured_ns, ready_ns=max(captured_ns, job.ready_ns),
                        pass_start_ns=started_ns, pass_end_ns=ended_ns)
        final = kept_final(u.source, u.start, u.end, transcript, stamps, read_from=reading.read_from,
                           own_from=reading.own_from, known=reading.known, heard=u.heard)
        ledger.record(u, final, transcript.temperature)
        ledger.counters["decoder_passes"] += transcript.decoder_passes
        ledger.counters["tokens"] += transcript.decoded_tokens
        ledger.counters["rereads"] += transcript.reread


async def _retry(session: ModelSession, retry: Retry, served: ServedFinals | None) -> Final | EarwigError:
    """The line's revised Final, or why it cannot be read again: by the server while it is
    up, else by the local retry model."""
    try:
        samples = line_samples(retry, session.params.pcm_rings.get(retry.source))
    except EarwigError as error:
        return error
    if served is not None and (final := await served.retried(retry, samples)) is not None:
        return final
    try:
        model = await session.retry_model()
    except EarwigError as error:
        return error
    return await asyncio.to_thread(retried, model, retry, samples)


# --- publish ------------------------------------------------------------------------------


def _publish_retry(actor: Actor, retry: Retry, outcome: Final | EarwigError, ledger: FinalLedger) -> None:
    if isinstance(outcome, EarwigError):
        actor.publish(ActorFailed(actor=actor.name, fatal=False, fix=outcome.fix,
                                  error=f"cannot retry the {retry.source} line at {clock(retry.start)}: {outcome.problem}"))
    else:
        actor.publish(outcome)
    actor.publish(Stats(actor=actor.name, counters=dict(ledger.counters)))


def _publish(actor: Actor, ledger: FinalLedger) -> None:
    for final in ledger.due():
        actor.publish(msgspec.structs.replace(
            final, stamps=msgspec.structs.replace(final.stamps, published_ns=time.monotonic_ns())))
        actor.publish(Stats(actor=actor.name, counters=dict(ledger.counters)))
