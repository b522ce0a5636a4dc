"""The final actor: finished utterances in, the text that is kept (Final) out.

receive  SpeechStart or DictationStart (the first one loads the model), SpeechPause (the
         VAD's hangover began: transcribe early, speculatively), SpeechResume (it was only a
         pause: drop the guess), SpeechEnd (the utterance is confirmed), Partial (the preview's text:
         the draft the decoder checks, ``final_draft``), Final (after a restart, the
         supervisor's copies of what this actor published before: its context)
compute  ``final_decode.transcribe`` over every pending utterance of both sources at once
         (one encoder batch), each read with what its source said before it (the text as
         a prompt; a fragment also with the audio before it: ``final_context``), then the
         hallucination filter (``final_filter``)
publish  exactly one Final per SpeechEnd, in order (empty text when nothing survived the
         filter, so a listener can retire the utterance's partial text); ModelState; Stats

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
from collections import deque
from dataclasses import dataclass

import msgspec

from earwig.actors.final_context import SpokenContext
from earwig.actors.final_decode import Window, compile_alignment, transcribe
from earwig.actors.final_draft import Abandoned
from earwig.actors.final_filter import kept_final
from earwig.actors.model_session import ModelParams, ModelSession
from earwig.actors.runtime import Actor
from earwig.messages import (DictationStart, Final, Partial, Source, SpeechEnd, SpeechPause, SpeechResume,
                             SpeechStart, Stamps, Stats)

#: Utterances transcribed in one encoder batch at most (both sources, and a backlog).
MAX_BATCH = 4


@dataclass(frozen=True)
class _Utterance:
    source: Source
    start: int
    end: int


class _Pending:
    """What the final actor owes: confirmed utterances in order, the newest speculation per
    source, and results computed ahead of their SpeechEnd."""

    def __init__(self) -> None:
        self.confirmed: deque[_Utterance] = deque()
        self.speculative: dict[Source, _Utterance] = {}
        self.results: dict[_Utterance, Final] = {}
        #: The hottest fallback each result needed: a hot one does not become context.
        self.temperatures: dict[_Utterance, float] = {}
        self.context = SpokenContext()
        #: When the VAD first said each utterance may be over (a SpeechPause, else its
        #: SpeechEnd): its Final's ``ready_ns``, unless its audio was captured later.
        self.ready_ns: dict[_Utterance, int] = {}
        #: The preview's latest text of each utterance not yet published, by (source, start).
        self.drafts: dict[tuple[Source, int], str] = {}
        #: The guesses being transcribed now, and the flag that abandons them once speech
        #: resumed in all of them (read by the transcribing thread between decoder passes).
        self.guessing: set[_Utterance] = set()
        self.abandon = threading.Event()
        self.changed = asyncio.Event()
        self.model_needed = False
        self.counters = {"finals": 0.0, "speculative_used": 0.0, "speculative_abandoned": 0.0,
                         "transcribe_s": 0.0, "decoder_passes": 0.0, "tokens": 0.0}

    def draft(self, utterance: _Utterance) -> str:
        return self.drafts.get((utterance.source, utterance.start), "")

    def forget_other_guesses(self, source: Source, keep: _Utterance | None) -> None:
        for utterance in [u for u in self.results if u.source == source and u != keep
                          and u not in self.confirmed]:
            del self.results[utterance]
            self.temperatures.pop(utterance, None)


async def main(actor: Actor) -> None:
    params: ModelParams = actor.params
    session = ModelSession(actor, params, warm_up=compile_alignment)
    pending = _Pending()
    receiver = asyncio.create_task(_receive(actor, pending))
    try:
        await _serve(actor, session, pending)
    finally:
        receiver.cancel()
        session.close()


# --- receive ------------------------------------------------------------------------------


async def _receive(actor: Actor, pending: _Pending) -> None:
    while True:
        message = await actor.control.get()
        if isinstance(message, Partial):
            pending.drafts[message.source, message.start] = f"{message.committed} {message.tentative}"
            continue
        if isinstance(message, Final):  # after a restart: what this actor had published before
            pending.context.record(message.source, message.text, message.language, message.start, message.end)
            continue
        if isinstance(message, (SpeechStart, DictationStart)):
            pending.model_needed = True
        elif isinstance(message, SpeechPause):
            guess = _Utterance(message.source, message.start, message.end)
            pending.ready_ns.setdefault(guess, time.monotonic_ns())
            pending.speculative[message.source] = guess
            pending.forget_other_guesses(message.source, guess)
        elif isinstance(message, SpeechResume):
            pending.speculative.pop(message.source, None)
            pending.forget_other_guesses(message.source, None)
            if pending.guessing:
                pending.guessing = {u for u in pending.guessing if u.source != message.source}
                if not pending.guessing:
                    pending.abandon.set()
        elif isinstance(message, SpeechEnd):
            utterance = _Utterance(message.source, message.start, message.end)
            pending.context.ended(message.source, message.end)
            pending.ready_ns.setdefault(utterance, time.monotonic_ns())
            pending.speculative.pop(message.source, None)
            pending.forget_other_guesses(message.source, utterance)
            if utterance in pending.results:
                pending.counters["speculative_used"] += 1
            pending.confirmed.append(utterance)
            pending.model_needed = True
        else:
            continue
        pending.changed.set()


# --- compute ------------------------------------------------------------------------------


async def _serve(actor: Actor, session: ModelSession, pending: _Pending) -> None:
    """Until Shutdown, and then until every confirmed utterance has its Final."""
    params: ModelParams = actor.params
    while not (actor.stopping.is_set() and not pending.confirmed):
        await _changed_or_stopping(actor, pending)
        if not pending.model_needed:
            continue
        await session.ready_model()
        _publish_ready(actor, pending)
        batch = [u for u in pending.confirmed if u not in pending.results][:MAX_BATCH]
        if not batch and not actor.stopping.is_set():
            batch = list(pending.speculative.values())
            pending.speculative.clear()
            pending.guessing = set(batch)
        if not batch:
            continue
        readings = [pending.context.reading(u.source, u.start, u.end, params.max_window) for u in batch]
        frames = [await session.frames(u.source, r.read_from, u.end) for u, r in zip(batch, readings)]
        windows = [Window(f, context=pending.context.before(u.source, r.read_from),
                          draft=f"{r.known} {pending.draft(u)}".strip())
                   for u, f, r in zip(batch, frames, readings)]
        started_ns = time.monotonic_ns()
        pending.abandon.clear()
        try:
            transcripts = await asyncio.to_thread(transcribe, session.loaded, windows,
                                                  abandoned=pending.abandon.is_set)
        except Abandoned:
            pending.counters["speculative_abandoned"] += 1
            continue
        finally:
            pending.guessing = set()
            pending.counters["transcribe_s"] += (time.monotonic_ns() - started_ns) / 1e9
        ended_ns = time.monotonic_ns()
        for utterance, transcript, window, reading in zip(batch, transcripts, frames, readings):
            captured_ns = session.captured_ns(utterance.source, reading.read_from, len(window))
            stamps = Stamps(captured_ns=captured_ns, ready_ns=max(captured_ns, pending.ready_ns.get(utterance, 0)),
                            pass_start_ns=started_ns, pass_end_ns=ended_ns)
            pending.results[utterance] = kept_final(utterance.source, utterance.start, utterance.end, transcript,
                                                    stamps, read_from=reading.read_from, own_from=reading.own_from,
                                                    known=reading.known)
            pending.temperatures[utterance] = transcript.temperature
            pending.counters["decoder_passes"] += transcript.decoder_passes
            pending.counters["tokens"] += transcript.decoded_tokens
        pending.changed.set()


async def _changed_or_stopping(actor: Actor, pending: _Pending) -> None:
    if not pending.changed.is_set() and not actor.stopping.is_set():
        waits = [asyncio.create_task(pending.changed.wait()), asyncio.create_task(actor.stopping.wait())]
        _, left = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in left:
            task.cancel()
    pending.changed.clear()


# --- publish ------------------------------------------------------------------------------


def _publish_ready(actor: Actor, pending: _Pending) -> None:
    """Finals whose turn has come: a source's utterances in the order they ended."""
    while pending.confirmed and pending.confirmed[0] in pending.results:
        done = pending.confirmed.popleft()
        final = pending.results.pop(done)
        pending.context.record(done.source, final.text, final.language, done.start, done.end,
                               pending.temperatures.pop(done, 0.0))
        actor.publish(msgspec.structs.replace(
            final, stamps=msgspec.structs.replace(final.stamps, published_ns=time.monotonic_ns())))
        pending.drafts = {(source, start): text for (source, start), text in pending.drafts.items()
                          if source != done.source or start > done.start}
        pending.ready_ns = {u: at for u, at in pending.ready_ns.items()
                            if u.source != done.source or u.start > done.start}
        pending.counters["finals"] += 1
        actor.publish(Stats(actor=actor.name, counters=dict(pending.counters)))
