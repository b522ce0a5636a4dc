"""LocalAgreement-2: which words of a growing utterance's preview can be shown as settled.

Why: the preview model re-transcribes the utterance so far every 250 ms, and its last
words change as more audio arrives. Showing every hypothesis as is makes text jump.
LocalAgreement-n (Macháček, Dabre and Bojar, "Turning Whisper into Real-Time Transcription
System", 2023) commits the longest common prefix of the last n hypotheses; with n = 2 a
word is committed once two consecutive runs agree on it and on everything before it.
Committed words are never taken back within the utterance; the rest is tentative.

When the speaker pauses, the audio of the utterance is complete: its hypothesis over all of
it is committed whole (``finish``), as whisper_streaming's ``finish`` flushes its buffer at
the end of the stream, instead of waiting for a second run that would only repeat it.

Words are compared without case and punctuation, so "bank" and "bank." agree; the
committed text keeps the spelling it had when it was committed.

A decoding loop, or one in the making ("Hello? Hello? Hello? Hello? ...",
``decoding.hallucinations.loop_start``), is never committed: a small model over a long stretch of noise repeats itself, and committed
words cannot be taken back when the final model writes what was said.
"""

from __future__ import annotations

import re

from earwig.decoding.hallucinations import loop_start

_NOT_A_WORD_CHARACTER = re.compile(r"[^\w']+")


def _key(word: str) -> str:
    return _NOT_A_WORD_CHARACTER.sub("", word.lower())


class LocalAgreement:
    """Feed each hypothesis of one utterance (its whole text so far) to ``update``."""

    def __init__(self) -> None:
        self.committed: list[str] = []
        self._previous: list[str] = []

    def update(self, hypothesis: str) -> tuple[str, str]:
        """Returns (committed, tentative) text after this hypothesis."""
        words = hypothesis.split()
        agreed = 0
        for before, now in zip(self._previous, words):
            if _key(before) != _key(now):
                break
            agreed += 1
        return self._commit(words, agreed)

    def finish(self, hypothesis: str) -> tuple[str, str]:
        """Like ``update``, for a hypothesis over the whole utterance: all of it is committed."""
        words = hypothesis.split()
        return self._commit(words, len(words))

    def _commit(self, words: list[str], agreed: int) -> tuple[str, str]:
        loop = loop_start([_key(word) for word in words])
        if loop is not None:
            agreed = min(agreed, loop)
        extends_committed = all(_key(a) == _key(b) for a, b in zip(self.committed, words))
        if agreed > len(self.committed) and extends_committed:
            self.committed += words[len(self.committed):agreed]
        self._previous = words
        # A hypothesis that rewrote committed words still shows what it heard after them.
        return " ".join(self.committed), " ".join(words[len(self.committed):])
