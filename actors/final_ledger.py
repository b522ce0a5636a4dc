"""What the final actor owes and what it may do next, decided from its messages alone.

Why a pure class: speculation (start on a SpeechPause, keep the guess when the SpeechEnd
with the same span confirms it, abandon it when speech resumes), the order Finals are
published in (a source's utterances in the order they ended) and a restart's redo (the
supervisor sends the unanswered SpeechEnds again) are the tricky part of the final actor.
Here they take events and return decisions, so they are tested message by message; the
actor (``actors/final``) only loads the model, reads the frames and runs the decoder.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from earwig.actors.final_context import Reading, SpokenContext
from earwig.messages import Final, Partial, Retry, Source

#: Utterances transcribed in one encoder batch at most (both sources, and a backlog).
MAX_BATCH = 4


@dataclass(frozen=True)
class Utterance:
    source: Source
    start: int
    end: int
    #: False: a stretch the VAD heard no speech in, read all the same (``audio.unheard``).
    heard: bool = True


@dataclass(frozen=True)
class Job:
    """One utterance of a batch, and what the decoder is told of it."""

    utterance: Utterance
    #: Where its audio is read from (a fragment: with the utterances before it).
    reading: Reading
    #: What its source said before (``final_context``).
    context: str
    #: The text already known of the audio read, and the preview's text of it.
    draft: str
    #: When the VAD first said it may be over (its SpeechPause, else its SpeechEnd).
    ready_ns: int


@dataclass(frozen=True)
class Batch:
    jobs: tuple[Job, ...]
    #: Guesses on SpeechPauses (no SpeechEnd yet), which speech resuming abandons.
    speculative: bool


class FinalLedger:
    """Feed it the actor's messages (``paused``, ``resumed``, ``ended``, ``drafted``,
    ``recalled``); ask it for the ``next_batch``, ``record`` each result, and publish what
    ``due`` returns."""

    def __init__(self, max_window: int, max_batch: int = MAX_BATCH) -> None:
        self._max_window, self._max_batch = max_window, max_batch
        #: Confirmed utterances (SpeechEnd) in the order they ended, Final not yet published.
        self._confirmed: deque[Utterance] = deque()
        #: The newest guess per source not yet transcribed.
        self._speculative: dict[Source, Utterance] = {}
        #: The guesses being transcribed now.
        self._guessing: set[Utterance] = set()
        #: Each source's guess until speech resumes or its SpeechEnd comes: a server may read it.
        self._guesses: dict[Source, Utterance] = {}
        #: Finals computed (ahead of their SpeechEnd, or waiting for their turn), with the
        #: hottest fallback each needed: a hot one does not become context.
        self._results: dict[Utterance, tuple[Final, float]] = {}
        self._ready_ns: dict[Utterance, int] = {}
        #: The preview's latest text of each utterance not yet published, by (source, start).
        self._drafts: dict[tuple[Source, int], str] = {}
        #: The start of each source's utterance in progress (SpeechStart, no SpeechEnd yet).
        self._open: dict[Source, int] = {}
        self.context = SpokenContext()
        #: Speech has begun (or a dictation): the model should be loaded.
        self.model_needed = False
        #: Lines the user asked to be transcribed again, by span, oldest request first.
        self._retries: dict[tuple[Source, int, int], Retry] = {}
        #: The actor's Stats: these decisions', and the decoder's work the actor adds.
        self.counters = {"finals": 0.0, "speculative_used": 0.0, "speculative_abandoned": 0.0,
                         "transcribe_s": 0.0, "decoder_passes": 0.0, "tokens": 0.0, "retries": 0.0, "retry_s": 0.0,
                         "served_guesses": 0.0, "rereads": 0.0}

    # --- what was heard -----------------------------------------------------------------

    def speech_started(self, source: Source, start: int) -> None:
        self._open[source] = start
        self.model_needed = True

    def paused(self, source: Source, start: int, end: int, now_ns: int) -> None:
        """A SpeechPause: ``[start, end)`` may be the whole utterance; guess it."""
        guess = Utterance(source, start, end)
        self._ready_ns.setdefault(guess, now_ns)
        self._speculative[source] = self._guesses[source] = guess
        self._forget_guesses(source, keep=guess)

    def resumed(self, source: Source) -> bool:
        """A SpeechResume: the source's guess is void. True when the batch in flight held
        guesses only and none is wanted any more: abandon it."""
        self._speculative.pop(source, None)
        self._guesses.pop(source, None)
        self._forget_guesses(source, keep=None)
        if not self._guessing:
            return False
        self._guessing = {u for u in self._guessing if u.source != source}
        return not self._guessing

    def ended(self, source: Source, start: int, end: int, now_ns: int, heard: bool = True) -> None:
        """A SpeechEnd: the utterance (or unheard stretch) is owed a Final, in its turn."""
        utterance = Utterance(source, start, end, heard)
        self._open.pop(source, None)
        self.context.ended(source, end)
        self._ready_ns.setdefault(utterance, now_ns)
        self._speculative.pop(source, None)
        self._guesses.pop(source, None)
        self._forget_guesses(source, keep=utterance)
        if utterance in self._results:
            self.counters["speculative_used"] += 1
        self._confirmed.append(utterance)
        self.model_needed = True

    def drafted(self, partial: Partial) -> None:
        self._drafts[partial.source, partial.start] = f"{partial.committed} {partial.tentative}"

    def recalled(self, final: Final) -> None:
        """A Final this actor published before it restarted: context for what comes next."""
        self.context.record(final.source, final.text, final.language, final.start, final.end, heard=final.heard)

    def retry_asked(self, retry: Retry) -> None:
        """The user asked for a line again; asked twice, it is read once (the later
        request's context counts)."""
        self._retries.pop((retry.source, retry.start, retry.end), None)
        self._retries[retry.source, retry.start, retry.end] = retry

    # --- what to do ---------------------------------------------------------------------

    @property
    def owes(self) -> bool:
        """An utterance has ended whose Final is not published yet."""
        return bool(self._confirmed)

    def oldest_needed(self, source: Source) -> int | None:
        """The first sample of ``source`` a Final still owed or to come may read (an
        utterance is read with up to a window of what came before it); None: none."""
        starts = [u.start for u in self._confirmed if u.source == source]
        if source in self._open:
            starts.append(self._open[source])
        return max(0, min(starts) - self._max_window) if starts else None

    def unanswered(self) -> list[Utterance]:
        """The confirmed utterances without a result, oldest first."""
        return [u for u in self._confirmed if u not in self._results]

    def guesses(self) -> list[Utterance]:
        """Each source's guess (its SpeechPause's span) still without a result: what a server
        may read ahead of the SpeechEnd, as the local model does."""
        return [u for u in self._guesses.values() if u not in self._results]

    def wanted(self, utterance: Utterance) -> bool:
        """Whether an answer for ``utterance`` is still of use: it is owed, or it is a
        source's guess without a result."""
        return self.owed(utterance) or (self._guesses.get(utterance.source) == utterance
                                        and utterance not in self._results)

    def owed(self, utterance: Utterance) -> bool:
        """Whether ``utterance`` is confirmed and still without a result: a second engine's
        answer to it (a server's, or the local model's after the server's) is not wanted."""
        return utterance in self._confirmed and utterance not in self._results

    def next_batch(self, stopping: bool = False, waiting: frozenset[Utterance] = frozenset(),
                   speculate: bool = True) -> Batch | None:
        """Confirmed utterances without a result first (oldest first), but those ``waiting``
        for a server's answer; else, unless the actor is stopping or told not to
        ``speculate`` (a server writes the text), the newest guess of each source."""
        utterances = [u for u in self.unanswered() if u not in waiting][:self._max_batch]
        speculative = not utterances and not stopping and speculate
        if speculative:
            utterances = list(self._speculative.values())
            self._speculative.clear()
            self._guessing = set(utterances)
        if not utterances:
            return None
        return Batch(tuple(self._job(u) for u in utterances), speculative)

    def next_retry(self, stopping: bool = False) -> Retry | None:
        """A line to read again, once no utterance waits for its Final or its guess: the live
        text is what keeps up with the talk, a user who asked for one line can wait a pass.
        None while stopping: a retry asked as the session ends is not waited for."""
        if stopping or not self._retries or any(u not in self._results for u in self._confirmed) \
                or self._speculative:
            return None
        key = next(iter(self._retries))
        return self._retries.pop(key)

    def _job(self, utterance: Utterance) -> Job:
        """An unheard stretch is read alone, with no draft: it is neither a fragment of the
        speech before it nor anything the preview read."""
        if not utterance.heard:
            reading = Reading(utterance.start, utterance.start)
        else:
            reading = self.context.reading(utterance.source, utterance.start, utterance.end, self._max_window)
        draft = f"{reading.known} {self._drafts.get((utterance.source, utterance.start), '')}".strip()
        return Job(utterance, reading, self.context.before(utterance.source, reading.read_from), draft,
                   self._ready_ns.get(utterance, 0))

    def abandoned(self) -> None:
        """The batch of guesses was dropped unfinished."""
        self._guessing = set()
        self.counters["speculative_abandoned"] += 1

    def record(self, utterance: Utterance, final: Final, temperature: float) -> None:
        """The batch in flight produced ``final`` for ``utterance``."""
        self._guessing.discard(utterance)
        self._results[utterance] = (final, temperature)

    def due(self) -> list[Final]:
        """The Finals whose turn has come, in order: each source's utterances as they ended,
        each published once (its text becomes the context of the next)."""
        finals = []
        while self._confirmed and self._confirmed[0] in self._results:
            done = self._confirmed.popleft()
            final, temperature = self._results.pop(done)
            self.context.record(done.source, final.text, final.language, done.start, done.end, temperature,
                                done.heard)
            self._drafts = {key: text for key, text in self._drafts.items()
                            if key[0] != done.source or key[1] > done.start}
            self._ready_ns = {u: at for u, at in self._ready_ns.items()
                              if u.source != done.source or u.start > done.start}
            self.counters["finals"] += 1
            finals.append(final)
        return finals

    def _forget_guesses(self, source: Source, keep: Utterance | None) -> None:
        for utterance in [u for u in self._results if u.source == source and u != keep
                          and u not in self._confirmed]:
            del self._results[utterance]
