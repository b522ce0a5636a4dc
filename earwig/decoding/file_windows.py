"""How a file's utterances become the windows the final model reads in ``earwig transcribe``.

Why join them: Whisper was trained on 30 s windows of running speech, and a sentence read
whole is transcribed better than its breaths read one by one: "and so my fellow
Americans" / "ask not" / "what your country can do for you" alone lose the word at each
cut and the sense across it. A file has no listener waiting for the first words, so
consecutive utterances go into one window while the window stays within ``max_s`` from
its first speech to its last (the silence between them included, so times stay the
file's), as faster-whisper's batched pipeline and WhisperX merge VAD segments into chunks.

Why the VAD still cuts the file: the windows hold speech only (no minute of silence for
the decoder to fill with "Thank you."), and a long recording is read in parallel windows
instead of one seek after another.

Why each window reaches ``MARGIN_S`` into the silence around it (``widened``): Silero
is sure of loud speech and unsure of soft speech (a second talker further from the mic, a
trailing "uh, so"), which it scores 0.2-0.5, below its threshold. Next to speech it was
sure of, that is most often speech too, and Whisper, which hears soft speech better, reads
it; over true silence Whisper's own no-speech test and ``decoding.hallucinations`` keep it from text.
The live final pass reads its fragments the same way (``final_context``).
"""

from __future__ import annotations

from dataclasses import dataclass

from earwig.audio.vad import MARGIN_S
from earwig.messages import SpeechEnd


@dataclass(frozen=True)
class Span:
    """Samples ``[start, end)`` of one source, read as one window; its language, when the
    file's language is detected per utterance ("" otherwise)."""

    start: int
    end: int
    language: str = ""


class WindowPacker:
    """Utterances (SpeechEnd, in order) in, windows out: consecutive utterances share a
    window while it spans at most ``max_samples``."""

    def __init__(self, max_samples: int) -> None:
        self.max_samples = max_samples
        self._open: Span | None = None

    def push(self, utterance: SpeechEnd, language: str = "") -> list[Span]:
        """The windows this utterance closed (the one it does not fit in, or, ``language``
        given, one in another language: a window is decoded in one language)."""
        if self._open is not None and utterance.end - self._open.start <= self.max_samples \
                and language == self._open.language:
            self._open = Span(self._open.start, utterance.end, language)
            return []
        closed = [self._open] if self._open is not None else []
        self._open = Span(utterance.start, utterance.end, language)
        return closed

    def finish(self) -> list[Span]:
        """The file ended: the window still open."""
        closed = [self._open] if self._open is not None else []
        self._open = None
        return closed


def widened(spans: list[Span], margin: int, end: int) -> list[Span]:
    """Each window ``margin`` samples longer at both ends, within the file's ``end``, never
    into its neighbour (a gap shorter than two margins is split at its middle)."""
    wide = []
    for i, span in enumerate(spans):
        before = spans[i - 1].end if i else None
        after = spans[i + 1].start if i + 1 < len(spans) else None
        start = max(0, span.start - margin) if before is None else max(span.start - margin, (before + span.start) // 2)
        stop = min(end, span.end + margin) if after is None else min(span.end + margin, (span.end + after) // 2)
        wide.append(Span(start, stop, span.language))
    return wide
