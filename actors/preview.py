"""The preview actor: utterances in progress in, live partial text (Partial) out.

receive  SpeechStart / SpeechEnd: which sources have an utterance in progress (the first
         SpeechStart loads the model); SpeechPause / SpeechResume: rest during a pause,
         leaving the cores to the final pass that starts then; Final: the language each
         source speaks (the final model detects it), which an English-only preview model
         cannot read when it is not English: it then shows nothing, and says so once
compute  every ``interval_s``, the utterance so far of every active source, from its mel
         ring, in one encoder batch over the audio there is plus 6 s of silence, rounded up
         to 2 s (``decoding.model.padded_length``; not a padded 30 s window);
         greedy decoding without timestamps or fallback; LocalAgreement-2 per utterance
         (``preview_agreement``), and the whole text committed once a run has read up to
         a pause
publish  Partial: ``committed`` text (never taken back within the utterance) and
         ``tentative`` text

Why skip ticks rather than queue them: a run that takes longer than the interval (a slow
CPU, both sources talking) would otherwise build a backlog of stale previews. The next run
starts at the next tick after the last one finished, on all the audio there is by then.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import numpy as np
from whisper.decoding import DecodingOptions

from earwig.actors.model_session import ModelParams, ModelSession
from earwig.actors.preview_agreement import LocalAgreement
from earwig.actors.runtime import Actor
from earwig.audio.log_mel import HOP
from earwig.config import SAMPLE_RATE
from earwig.decoding.model import LoadedModel, token_budget
from earwig.messages import (ActorFailed, Final, Partial, Source, SpeechEnd, SpeechPause, SpeechResume,
                             SpeechStart, Stamps, Stats)

#: Tokens decoded per second of audio at most: fast speech is ~4 tokens/s, so a
#: hallucination loop stops early instead of costing 224 decoder steps.
TOKENS_PER_SECOND = 8
MIN_TOKENS = 4
#: Whisper's text of less than a second of speech is mostly guesses ("with", "quick
#: quick quick"): shown as tentative, never committed.
COMMIT_FROM_S = 1.0
#: Audio an utterance must have gained since its last preview to be read again.
MIN_NEW_S = 0.1


@dataclass
class _Utterance:
    start: int
    agreement: LocalAgreement = field(default_factory=LocalAgreement)
    previewed_to: int = 0
    #: Where the speech paused (the VAD's hangover runs); None while it is being spoken.
    paused_at: int | None = None

    def wants_preview(self, published: int) -> bool:
        """New speech since the last preview (a pause adds none once read up to it; before
        that, any speech the last run missed is worth a run that commits it all)."""
        if self.paused_at is not None:
            return min(published, self.paused_at) > self.previewed_to
        return published - self.previewed_to >= MIN_NEW_S * SAMPLE_RATE

    def read_to_pause(self) -> bool:
        """The last preview read all the speech there is: the speaker paused before it."""
        return self.paused_at is not None and self.previewed_to >= self.paused_at


@dataclass
class ReadableLanguages:
    """What each source speaks, as its last Final said, and whether the preview can read it."""

    english_only: bool
    configured: str
    spoken: dict[Source, str] = field(default_factory=dict)
    said_unreadable: bool = False

    def readable(self, source: Source | None = None) -> bool:
        """The source's speech (None: speech in the configured language) can be read."""
        language = self.spoken.get(source, self.configured)
        return not self.english_only or language in ("en", "auto")

    def heard(self, final: Final) -> bool:
        """Record a Final's language; True the first time the preview cannot read one."""
        if final.text:
            self.spoken[final.source] = final.language
        first = not self.readable(final.source) and not self.said_unreadable
        self.said_unreadable = self.said_unreadable or first
        return first


#: The speech events (a pause: rest until speech resumes) and the Finals' language (an
#: English-only preview stays quiet over others).
LISTENS = (SpeechStart, SpeechPause, SpeechResume, SpeechEnd, Final)


async def main(actor: Actor) -> None:
    params: ModelParams = actor.params
    session = ModelSession(actor, params)
    open_utterances: dict[Source, _Utterance] = {}
    languages = ReadableLanguages(english_only=params.model.endswith(".en"), configured=params.language)
    counters = {"previews": 0.0, "skipped_ticks": 0.0, "preview_s": 0.0}
    if not languages.readable():  # a set language the model cannot read: said once, now
        languages.said_unreadable = True
        _say_unreadable(actor, params.language)
    try:
        await actor.serve(_handlers(actor, open_utterances, languages),
                          _preview_every_interval(actor, session, open_utterances, languages, counters))
    finally:
        session.close()


# --- receive ------------------------------------------------------------------------------


def _handlers(actor: Actor, open_utterances: dict[Source, _Utterance], languages: ReadableLanguages) -> dict:
    def heard(final: Final) -> None:
        if languages.heard(final):
            _say_unreadable(actor, final.language)

    def started(message: SpeechStart) -> None:
        open_utterances[message.source] = _Utterance(message.start, previewed_to=message.start)

    def of_open(change):
        def handle(message: SpeechPause | SpeechResume | SpeechEnd) -> None:
            current = open_utterances.get(message.source)
            if current is not None and current.start == message.start:
                change(current, message)
        return handle

    def paused(current: _Utterance, message: SpeechPause) -> None:
        current.paused_at = message.end

    def resumed(current: _Utterance, message: SpeechResume) -> None:
        current.paused_at = None

    def ended(current: _Utterance, message: SpeechEnd) -> None:
        del open_utterances[message.source]

    return {Final: heard, SpeechStart: started, SpeechPause: of_open(paused),
            SpeechResume: of_open(resumed), SpeechEnd: of_open(ended)}


# --- compute ------------------------------------------------------------------------------


async def _preview_every_interval(actor: Actor, session: ModelSession, open_utterances: dict[Source, _Utterance],
                                  languages: ReadableLanguages, counters: dict[str, float]) -> None:
    params: ModelParams = actor.params
    loop = asyncio.get_running_loop()
    due = loop.time()
    while not actor.stopping.is_set():
        due += params.interval_s
        if due < loop.time():  # the last run overran: skip the ticks it covered
            skipped = int((loop.time() - due) // params.interval_s) + 1
            counters["skipped_ticks"] += skipped
            due += skipped * params.interval_s
        await asyncio.sleep(due - loop.time())
        readable = {s: u for s, u in open_utterances.items() if languages.readable(s)}
        if readable:
            await _preview(actor, session, readable, open_utterances, counters)
        else:
            session.idle()


def _say_unreadable(actor: Actor, language: str) -> None:
    params: ModelParams = actor.params
    actor.publish(ActorFailed(
        actor=actor.name, fatal=False,
        error=f"the preview model {params.model} reads English only: no partial text while the speech is {language!r}",
        fix=f"install the multilingual {params.model[:-3]} (`earwig models`) for partial text in other languages"))


async def _preview(actor: Actor, session: ModelSession, readable: dict[Source, _Utterance],
                   open_utterances: dict[Source, _Utterance], counters: dict[str, float]) -> None:
    await session.ready_model()
    due = {source: u for source, u in readable.items()
           if u.wants_preview(session.published_sample(source))}
    if not due:
        return
    frames = {source: await session.frames(source, u.start) for source, u in due.items()}
    frames = {source: f for source, f in frames.items() if len(f)}
    if not frames:
        return
    started_ns = time.monotonic_ns()
    texts = await asyncio.to_thread(_hypotheses, session.loaded, list(frames.values()))
    ended_ns = time.monotonic_ns()
    counters["preview_s"] += (ended_ns - started_ns) / 1e9
    for (source, window), text in zip(frames.items(), texts):
        utterance = due[source]
        if open_utterances.get(source) is not utterance:
            continue  # it ended while we read it; its Final is coming
        utterance.previewed_to = utterance.start // HOP * HOP + len(window) * HOP
        if len(window) * HOP >= COMMIT_FROM_S * SAMPLE_RATE:
            committed, tentative = (utterance.agreement.finish if utterance.read_to_pause()
                                    else utterance.agreement.update)(text)
        else:
            committed, tentative = "", text
        stamps = Stamps(captured_ns=session.captured_ns(source, utterance.start, len(window)), ready_ns=started_ns,
                        pass_start_ns=started_ns, pass_end_ns=ended_ns, published_ns=time.monotonic_ns())
        actor.publish(Partial(source=source, start=utterance.start, end=utterance.previewed_to,
                              committed=committed, tentative=tentative, stamps=stamps))
        counters["previews"] += 1
    actor.publish(Stats(actor=actor.name, counters=dict(counters)))


def _hypotheses(model: LoadedModel, windows: list[np.ndarray]) -> list[str]:
    """Greedy text of each window: one encoder batch, one decoder batch."""
    features = model.encode(windows)
    longest_s = max(len(w) for w in windows) * HOP / SAMPLE_RATE
    options = DecodingOptions(language=model.language, task=model.task,
                              without_timestamps=True, temperature=0.0,
                              sample_len=token_budget(longest_s, TOKENS_PER_SECOND, MIN_TOKENS))
    return [result.text.strip() for result in model.decode(features, options)]
