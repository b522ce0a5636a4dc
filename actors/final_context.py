"""What the final model is told was said before an utterance: the same source's recent
Finals, as ``transcribe()`` conditions each window on the text of the windows before it.

Why: an utterance cut at a breath ("is not.") means little alone; after "and so my fellow
Americans, ask not what your country can do for you," the decoder knows the names, the
spelling and the sentence it is in. Whisper's own long-form transcription reads its
previous text for the same reason.

When the context is dropped, and why:
- after ``RESET_AFTER_S`` without speech from the source: what came before is another
  exchange, and old text only biases the decoder towards repeating it;
- when the language changes: English text before a German utterance pulls the decoder
  towards English (and towards translating);
- when a Final was decoded only at a fallback temperature above ``transcribe()``'s 0.5, or
  reads as a repetition loop (``decoding.hallucinations.looping``): its text is the kind of output
  that, fed back, makes the next window repeat it too (whisper resets its prompt then).

A fragment (an utterance shorter than ``FRAGMENT_S``: "is not.", "district corpus.") is
also read with the audio of the utterances before it (``reading``), when they follow each
other closely (``JOIN_GAP_S``): text alone tells the decoder what was said, the audio tells it
how the talker sounds and what was said softly in the gap, which the VAD did not count as
speech. The earlier utterances' Finals are its draft (checked in one decoder pass), and the
fragment's Final keeps the words said after the last of them ended. A fragment with no
utterance close before it is read with up to ``MARGIN_S`` of the audio before it, as a
file's windows are (``file_windows``): soft speech before a loud word is speech too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from earwig.audio.vad import MARGIN_S
from earwig.config import SAMPLE_RATE
from earwig.decoding.hallucinations import looping
from earwig.messages import Final, Source

#: Silence after which a source's earlier text no longer counts as context.
RESET_AFTER_S = 30.0
#: Words of context kept: more than the 223 tokens the prompt can hold, which
#: ``decoding.transcribe`` trims from the oldest end.
KEEP_WORDS = 200
#: ``transcribe()``'s rule: a window decoded hotter than this does not condition the next.
MAX_TEMPERATURE = 0.5
#: Utterances shorter than this are read with the one before: a second or two holds a few
#: words, too few for Whisper to tell a word from the sounds around it.
FRAGMENT_S = 2.0
#: The longest gap a fragment is joined across: twice ``MARGIN_S``, the gap a file's
#: widened windows read across, so live and files read the same soft speech.
JOIN_GAP_S = 4.0
#: How far back a fragment's reading reaches: the utterances of the last ten seconds, a
#: few sentences, read in one pass (their Finals are its draft, checked at once).
READ_BACK_S = 10.0
#: Utterance ends remembered per source (more than a reading reaches back over).
RECENT_ENDS = 16


@dataclass(frozen=True)
class Reading:
    """Where the final pass reads an utterance's audio from, from where the words are its
    own (those centred later), and the text already known of the audio between."""

    read_from: int
    own_from: int
    known: str = ""


@dataclass(frozen=True)
class Said:
    """A Final's text, language and sample span; ``heard`` False: an unheard stretch's
    (``audio.unheard``), which is context but never joined to a fragment."""

    text: str
    language: str
    start: int
    end: int
    heard: bool = True


class SpokenContext:
    """Feed each source's Finals in order to ``record``; ``before`` gives the text to prompt
    an utterance with."""

    def __init__(self) -> None:
        self._said: dict[Source, list[Said]] = {}
        #: Where each source's utterances ended (SpeechEnd), Final or not yet: no reading
        #: reaches back into an utterance whose Final is still to come.
        self._ends: dict[Source, list[int]] = {}

    def ended(self, source: Source, end: int) -> None:
        """An utterance of ``source`` ended at sample ``end`` (its SpeechEnd)."""
        ends = self._ends.setdefault(source, [])
        ends.append(end)
        del ends[:-RECENT_ENDS]

    def record(self, source: Source, text: str, language: str, start: int, end: int,
               temperature: float = 0.0, heard: bool = True) -> None:
        """A Final of ``source`` of samples ``[start, end)``, decoded at ``temperature``."""
        said = self._said.setdefault(source, [])
        if said and said[-1].language != language:
            said.clear()
        if temperature > MAX_TEMPERATURE or looping(text):
            said.clear()
            return
        if text.strip():
            said.append(Said(text.strip(), language, start, end, heard))
        while sum(len(s.text.split()) for s in said) > KEEP_WORDS and len(said) > 1:
            said.pop(0)

    def before(self, source: Source, start: int) -> str:
        """The source's context for an utterance beginning at sample ``start``."""
        said = self._said.get(source, [])
        if said and start - said[-1].end > RESET_AFTER_S * SAMPLE_RATE:
            said.clear()
        return " ".join(s.text for s in said if s.end <= start)

    def reading(self, source: Source, start: int, end: int, max_samples: int) -> Reading:
        """How to read the utterance ``[start, end)``: alone, or, a fragment, with the
        source's Finals of the last ``READ_BACK_S`` that follow each other (and it) by at most
        ``JOIN_GAP_S`` (all within ``max_samples``), else with up to ``MARGIN_S`` of the
        silence before it; never with an utterance whose Final has not come yet, nor with an
        unheard stretch (read alone: a pass over it again would write its words twice where
        the join's text does not match them word for word)."""
        said = [s for s in self._said.get(source, []) if s.end <= start]
        if end - start >= FRAGMENT_S * SAMPLE_RATE:
            return Reading(start, start)
        joined: list[Said] = []
        for before in reversed(said):
            after = joined[0].start if joined else start
            if after - before.end > JOIN_GAP_S * SAMPLE_RATE or end - before.start > max_samples \
                    or start - before.start > READ_BACK_S * SAMPLE_RATE or not before.heard:
                break
            joined.insert(0, before)
        # The last utterance that ended before this one, whether its Final has come or not.
        floor = max([0, *(e for e in self._ends.get(source, []) if e <= start), *(s.end for s in said)])
        if joined and joined[-1].end >= floor:
            return Reading(joined[0].start, joined[-1].end, " ".join(s.text for s in joined))
        since = max(floor, start - int(MARGIN_S * SAMPLE_RATE))
        return Reading(since, since)


def said_before(finals: Iterable[Final], line: Final) -> str:
    """What ``line``'s source said before it, as its live reading was told (its last
    ``KEEP_WORDS`` words, back to a silence of ``RESET_AFTER_S``): the context a line read
    again (a retry) is prompted with, however long ago it was said."""
    words: list[str] = []
    after = line.start
    for final in sorted((f for f in finals if f.source == line.source and f.end <= line.start and f.readable),
                        key=lambda f: f.start, reverse=True):
        if after - final.end > RESET_AFTER_S * SAMPLE_RATE or len(words) >= KEEP_WORDS:
            break
        words[:0] = final.text.split()
        after = final.start
    return " ".join(words[-KEEP_WORDS:])
