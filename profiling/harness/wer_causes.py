"""Where the word errors of a transcript come from: substitutions, deletions and insertions,
and each deleted word by what happened to its stretch of audio.

A deleted word is looked up by the time it was said (taken from a transcript of the clean
recording, whose words carry times) among the utterances the VAD found in the degraded copy
and the windows the final model read:

- ``missed``: in no utterance and no window: the VAD never heard it;
- ``margin``: in no utterance, but inside a window's reach into the silence around it
  (``vad.MARGIN_S``): heard only because a window was widened;
- ``edge``: across, or within ``EDGE_S`` of, the end of an utterance or a window: cut;
- ``unwritten``: well inside an utterance's window, and still not in the text: the
  decoder's loss, not the segmentation's.

Words are compared after Whisper's normalizer, one transcript word at a time (a word's
normalized tokens share its time), so the counts can differ by a word or two from the WER
of the whole text normalized at once; the WER itself is reported from the latter.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import jiwer

from earwig.config import SAMPLE_RATE
from earwig.messages import Final
from earwig.profiling.harness.scoring import words

#: A deleted word this close to an utterance's or window's end counts as cut there.
EDGE_S = 0.2
CAUSES = ("missed", "margin", "edge", "unwritten")


@dataclass(frozen=True)
class TimedWord:
    text: str
    start: int
    end: int


def timed_words(finals: list[Final], english: bool = True) -> list[TimedWord]:
    """The Finals' words, normalized, each with its sample span (a Final without word times:
    its words spread evenly over its span)."""
    out = []
    for final in finals:
        if final.words:
            out += [TimedWord(token, w.start, w.end) for w in final.words for token in words(w.text, english)]
            continue
        tokens = words(final.text, english)
        step = (final.end - final.start) / max(len(tokens), 1)
        out += [TimedWord(t, int(final.start + i * step), int(final.start + (i + 1) * step))
                for i, t in enumerate(tokens)]
    return out


def reference_times(reference: str, clean: list[TimedWord], english: bool = True) -> list[TimedWord]:
    """The reference's words with the times of the clean transcript's words they align to;
    a word the clean transcript lacks gets the span between its neighbours'."""
    said = words(reference, english)
    spans: list[tuple[int, int] | None] = [None] * len(said)
    if said and clean:
        for chunk in jiwer.process_words(" ".join(said), " ".join(w.text for w in clean)).alignments[0]:
            if chunk.type in ("equal", "substitute"):
                for offset in range(chunk.ref_end_idx - chunk.ref_start_idx):
                    heard = clean[min(chunk.hyp_start_idx + offset, chunk.hyp_end_idx - 1)]
                    spans[chunk.ref_start_idx + offset] = (heard.start, heard.end)
    for i, span in enumerate(spans):
        if span is None:
            before = next((s[1] for s in reversed(spans[:i]) if s is not None), 0)
            after = next((s[0] for s in spans[i + 1:] if s is not None), before)
            spans[i] = (before, max(before, after))
    return [TimedWord(text, *span) for text, span in zip(said, spans)]


@dataclass
class Errors:
    """Word errors of one or more transcripts against their references."""

    reference_words: int = 0
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    deleted_by: Counter = field(default_factory=Counter)

    def add(self, other: Errors) -> None:
        self.reference_words += other.reference_words
        self.substitutions += other.substitutions
        self.deletions += other.deletions
        self.insertions += other.insertions
        self.deleted_by.update(other.deleted_by)

    def share(self, count: int) -> float:
        return count / max(self.reference_words, 1)


def _cause(word: TimedWord, utterances: list[tuple[int, int]], windows: list[tuple[int, int]]) -> str:
    edge = int(EDGE_S * SAMPLE_RATE)
    inside = [(s, e) for s, e in windows if s < word.end and word.start < e]
    if not inside:
        return "missed"
    if not any(s < word.end and word.start < e for s, e in utterances):
        return "margin"
    near_an_end = any(word.start < b + edge and word.end > b - edge
                      for s, e in [*utterances, *inside] for b in (s, e))
    return "edge" if near_an_end else "unwritten"


def errors(reference: list[TimedWord], heard: list[str], utterances: list[tuple[int, int]] | None = None,
           windows: list[tuple[int, int]] | None = None) -> Errors:
    """``heard``'s errors against the timed ``reference``; with the utterances and windows
    of the run (sample spans), each deletion's cause."""
    found = Errors(reference_words=len(reference))
    if not reference:
        found.insertions = len(heard)
        return found
    if not heard:
        chunks = [jiwer.AlignmentChunk("delete", 0, len(reference), 0, 0)]
    else:
        chunks = jiwer.process_words(" ".join(w.text for w in reference), " ".join(heard)).alignments[0]
    for chunk in chunks:
        if chunk.type == "substitute":
            found.substitutions += chunk.ref_end_idx - chunk.ref_start_idx
        elif chunk.type == "insert":
            found.insertions += chunk.hyp_end_idx - chunk.hyp_start_idx
        elif chunk.type == "delete":
            found.deletions += chunk.ref_end_idx - chunk.ref_start_idx
            if utterances is not None and windows is not None:
                found.deleted_by.update(_cause(w, utterances, windows)
                                        for w in reference[chunk.ref_start_idx:chunk.ref_end_idx])
    return found
