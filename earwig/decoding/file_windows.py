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

Why the stretches the VAD left out are read too (``GapFiller``): Silero misses speech it
should hear, and not only soft speech. Its recurrent state comes to take a quiet or
reverberant talker for background: on a reverberant copy of a two-talker recording it
scored the second talker 0.93 from a fresh state and 0.03 after the first talker's minute,
so half a minute of speech was never read; under noise at the talker's level it hears
nothing at all, though Whisper still reads most of the words. Tuning the VAD (state resets,
gain) helped one degradation and hurt others. What does not depend on the VAD finding
every word is to read everything, as ``transcribe()`` does, and use the VAD only for where
the windows are cut and how they are batched: over true silence Whisper's no-speech test
and ``decoding.hallucinations`` keep the gaps from text, as they do the margins.
"""

from __future__ import annotations

from dataclasses import dataclass

from earwig.audio.unheard import tiles
from earwig.messages import SpeechEnd


@dataclass(frozen=True)
class Span:
    """Samples ``[start, end)`` of one source, read as one window; its language, when the
    file's language is detected per utterance ("" otherwise)."""

    start: int
    end: int
    language: str = ""
    #: A stretch the VAD heard no speech in (``GapFiller``).
    gap: bool = False


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

    @property
    def open_start(self) -> int | None:
        """Where the window still open starts (its frames are still needed)."""
        return None if self._open is None else self._open.start

    def finish(self) -> list[Span]:
        """The file ended: the window still open."""
        closed = [self._open] if self._open is not None else []
        self._open = None
        return closed


class Widener:
    """Windows in file order in, each ``margin`` samples longer at both ends out: within the
    file, never into its neighbour (a gap shorter than two margins is split at its middle).
    A window goes out once the next one is known, or the file's end."""

    def __init__(self, margin: int) -> None:
        self.margin = margin
        self._held: Span | None = None
        self._before: int | None = None  # the end of the window before the held one

    @property
    def held_start(self) -> int | None:
        """Where the window waiting for its neighbour starts (its frames are still needed)."""
        return None if self._held is None else self._held.start - self.margin

    def push(self, span: Span) -> list[Span]:
        out = self._release(after=span.start, end=None)
        self._held = span
        return out

    def finish(self, end: int) -> list[Span]:
        return self._release(after=None, end=end)

    def _release(self, after: int | None, end: int | None) -> list[Span]:
        span, before, margin = self._held, self._before, self.margin
        if span is None:
            return []
        start = max(0, span.start - margin) if before is None else max(span.start - margin, (before + span.start) // 2)
        stop = min(end, span.end + margin) if after is None else min(span.end + margin, (span.end + after) // 2)
        self._before, self._held = span.end, None
        return [Span(start, stop, span.language)]


def widened(spans: list[Span], margin: int, end: int) -> list[Span]:
    """``Widener`` over a whole file's windows."""
    widener = Widener(margin)
    return [wide for span in spans for wide in widener.push(span)] + widener.finish(end)


class GapFiller:
    """Windows in file order in; the same windows out, with the stretches between them (and
    before the first, after the last) as windows of their own (``gap``), each at most
    ``max_samples`` long. A gap shorter than ``min_samples`` is left: the windows around it
    already reach into its silence. With ``read`` False the windows pass alone (a file read
    through a server: see ``decoding/files``)."""

    def __init__(self, min_samples: int, max_samples: int, read: bool = True) -> None:
        self.min_samples, self.max_samples, self.read = min_samples, max_samples, read
        #: Where the last window out ends: everything before it is read.
        self.covered = 0

    def push(self, span: Span) -> list[Span]:
        out = self._tiled(span.start) + [span]
        self.covered = max(self.covered, span.end)
        return out

    def idle(self, until: int) -> list[Span]:
        """No window will start before ``until``: the whole gap windows before it."""
        if not self.read:
            self.covered = max(self.covered, until)
            return []
        out = []
        while until - self.covered >= self.max_samples:
            out.append(Span(self.covered, self.covered + self.max_samples, gap=True))
            self.covered += self.max_samples
        return out

    def finish(self, end: int) -> list[Span]:
        return self._tiled(end)

    def _tiled(self, end: int) -> list[Span]:
        """``[covered, end)`` in equal windows of at most ``max_samples`` (none if it is short)."""
        pieces = tiles(self.covered, end, self.min_samples, self.max_samples) if self.read else []
        if pieces:
            self.covered = end
        return [Span(a, b, gap=True) for a, b in pieces]
