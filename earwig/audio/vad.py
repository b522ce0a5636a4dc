"""Voice activity: Silero VAD probabilities, turned into utterances with sample positions.

Why Silero through onnxruntime: the model ships inside the ``silero-vad`` wheel (no
download), and onnxruntime runs one 32 ms chunk in about 0.15 ms of one core, against about
0.5 ms for the TorchScript build of the same model; on a live machine that is the
difference between VAD being noise and VAD being the mel actor's largest cost.

Why a hand-written segmenter rather than silero's ``VADIterator``: the iterator has no
minimum speech duration and no cut of long utterances, and its events carry no position
of the cut. ``Segmenter`` keeps silero's own rule (speech above ``threshold``, silence
below ``threshold - 0.15``, a minimum silence before an end, a minimum length before a
start counts, padding on both sides) and adds the cut.
"""

from __future__ import annotations

from collections import deque
import importlib.util
from pathlib import Path

import numpy as np

from earwig.audio.unheard import UnheardStretches
from earwig.config import SAMPLE_RATE, VadConfig
from earwig.messages import Source, SpeechEnd, SpeechPause, SpeechResume, SpeechStart

MODEL_FILE = "silero_vad_16k_sequence.onnx"
CHUNK = 512  # samples per Silero chunk at 16 kHz
CONTEXT = 64  # samples of the previous chunk the model sees before each chunk
#: Silero's hysteresis: speech ends only below ``threshold - NEG_MARGIN``.
NEG_MARGIN = 0.15
#: How far a fragment (``actors/final_context``), or a file's window
#: (``decoding/file_windows``), reaches into the silence before it: Silero scores soft
#: speech (a second talker further from the mic, a trailing "uh, so") 0.2-0.5, below its
#: threshold, and next to speech it was sure of that is most often speech too, which
#: Whisper hears.
MARGIN_S = 2.0
#: Audio a VAD that takes over from a killed one hears before it judges any (``_warm_up``).
WARM_UP_S = 1.0
#: The stretch at the end of a too-long utterance in which its cut is placed.
CUT_SEARCH_S = 5.0


def _session():
    """One onnxruntime session on one thread; sessions are shared, states are per source."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    # Found, not imported: importing silero_vad sets PyTorch to one thread, process-wide.
    package = importlib.util.find_spec("silero_vad")
    path = Path(package.submodule_search_locations[0]) / "data" / MODEL_FILE
    return onnxruntime.InferenceSession(str(path), sess_options=options,
                                        providers=["CPUExecutionProvider"])


class SpeechProbability:
    """Silero's model for one source: any number of 512-sample chunks in, P(speech) of each out.

    The wheel's "sequence" export runs the chunks of one call in a single ONNX call and
    carries the LSTM state between calls, giving the streaming model's probabilities
    exactly; a cycle's chunks then cost one call instead of one each.
    """

    _shared_session = None

    def __init__(self) -> None:
        if SpeechProbability._shared_session is None:
            SpeechProbability._shared_session = _session()
        self._session = SpeechProbability._shared_session
        self._hidden = np.zeros((1, 1, 128), np.float32)
        self._cell = np.zeros((1, 1, 128), np.float32)
        self._context = np.zeros(CONTEXT, np.float32)

    def __call__(self, chunks: np.ndarray) -> np.ndarray:
        rows = np.empty((len(chunks), CONTEXT + CHUNK), np.float32)
        rows[:, CONTEXT:] = chunks
        rows[0, :CONTEXT] = self._context
        rows[1:, :CONTEXT] = chunks[:-1, -CONTEXT:]
        self._context = chunks[-1, -CONTEXT:].copy()
        probabilities, self._hidden, self._cell = self._session.run(
            None, {"input": rows, "h": self._hidden, "c": self._cell})
        return probabilities


SpeechEvent = SpeechStart | SpeechPause | SpeechResume | SpeechEnd


class Segmenter:
    """P(speech) per chunk in, speech events (start, pause, end) at absolute sample positions out.

    An utterance starts when speech lasted ``min_speech_ms``, ``lead_ms`` before it; it ends after
    ``min_silence_ms`` below the lower threshold (the hangover), at the silence's start plus
    ``pad_ms``. One that reaches ``max_utterance_s`` is cut in the middle of its quietest
    chunk of the last ``CUT_SEARCH_S`` seconds and goes on as a new utterance.

    While dictation holds it (``hold`` .. ``release``), silence does not end the utterance:
    the key does, at once, trimmed to the last speech plus ``pad_ms``.
    """

    def __init__(self, source: Source, settings: VadConfig) -> None:
        self.source = source
        ms = SAMPLE_RATE // 1000
        self.threshold = settings.threshold
        self.min_speech = settings.min_speech_ms * ms
        self.min_silence = settings.min_silence_ms * ms
        self.pad = settings.pad_ms * ms
        self.lead = settings.lead_ms * ms
        self.max_utterance = int(settings.max_utterance_s * SAMPLE_RATE)
        self.candidate: int | None = None  # where speech began, before it counts
        self.start: int | None = None  # reported start of the utterance in progress
        self.silence_from: int | None = None
        self.last_end = 0
        self._energy: deque[tuple[int, float]] = deque()
        #: Where dictation began (None: not dictating), and the utterances it ended since.
        self.held_from: int | None = None
        self.held_utterances = 0

    @property
    def active(self) -> bool:
        return self.start is not None

    def push(self, at: int, probability: float, energy: float) -> list[SpeechEvent]:
        """Chunk ``[at, at + CHUNK)`` had this probability and mean square; returns events.

        A SpeechPause goes out when the hangover begins, with the ``end`` the SpeechEnd will
        carry if the silence lasts ``min_silence_ms``; a SpeechResume if speech comes back
        before that."""
        end = at + CHUNK
        if self.candidate is None:
            if probability < self.threshold:
                return []
            self.candidate, self.silence_from = at, None
        events: list[SpeechEvent] = []
        if probability >= self.threshold:
            if self.active and self.silence_from is not None:
                events.append(SpeechResume(source=self.source, start=self.start, at=at))
            self.silence_from = None
        elif probability < self.threshold - NEG_MARGIN and self.silence_from is None:
            self.silence_from = at
            if self.active:
                events.append(SpeechPause(source=self.source, start=self.start, end=at + self.pad))
        if self.active:
            self._energy.append((at, energy))
        held = self.held_from is not None and self.active
        if self.silence_from is not None and end - self.silence_from >= self.min_silence and not held:
            if self.active:
                events.append(self._end(min(self.silence_from + self.pad, end)))
            self.candidate = self.silence_from = None
            return events
        if not self.active and self.silence_from is None and end - self.candidate >= self.min_speech:
            self.start = max(self.candidate - self.lead, self.last_end, 0)
            self._energy.clear()
            events.append(SpeechStart(source=self.source, start=self.start))
        if self.active and end - self.start >= self.max_utterance:
            events += self._cut(end)
        return events

    def finish(self, end: int) -> list[SpeechEnd]:
        """The source ended: close the utterance in progress at the last sample."""
        if not self.active:
            return []
        stop = end if self.silence_from is None else min(self.silence_from + self.pad, end)
        return [self._end(stop)]

    def resume(self, start: int) -> None:
        """An utterance from ``start`` is in progress (a restarted mel process carries on
        the one its predecessor had announced): its end comes as usual."""
        if not self.active:
            self.start = self.candidate = start
            self.silence_from = None
            self._energy.clear()

    def hold(self, at: int) -> list[SpeechStart | SpeechEnd]:
        """Dictation began at ``at``: speech before it is an utterance of its own, ended there."""
        events: list[SpeechStart | SpeechEnd] = []
        if self.active and self.start < at:
            events.append(self._end(at))
            if self.silence_from is None:  # still speaking: the dictation's utterance begins now
                self.start = at
                self._energy.clear()
                events.append(SpeechStart(source=self.source, start=at))
        if not self.active:  # the next utterance, padding included, begins after the key
            self.last_end = max(self.last_end, at)
        self.held_from, self.held_utterances = at, 0
        return events

    def release(self, at: int) -> tuple[list[SpeechEnd], int]:
        """Dictation ended at ``at``: the utterance in progress ends at its last speech (plus
        the pad), no later than ``at``. Returns it and how many utterances dictation ended."""
        events = []
        if self.active:
            stop = at if self.silence_from is None else min(self.silence_from + self.pad, at)
            events.append(self._end(max(stop, self.start + 1)))
            self.candidate = self.silence_from = None
        utterances = self.held_utterances
        self.held_from, self.held_utterances = None, 0
        return events, utterances

    def _end(self, end: int, cut: bool = False) -> SpeechEnd:
        event = SpeechEnd(source=self.source, start=self.start, end=end, cut=cut)
        self.last_end = end
        self.start = None
        self.held_utterances += self.held_from is not None
        return event

    def _cut(self, end: int) -> list[SpeechStart | SpeechEnd]:
        search_from = end - int(CUT_SEARCH_S * SAMPLE_RATE)
        quietest = min((e, at) for at, e in self._energy if at >= search_from)[1]
        cut = quietest + CHUNK // 2
        events: list[SpeechStart | SpeechEnd] = [self._end(cut, cut=True)]
        self.start = self.candidate = cut
        while self._energy and self._energy[0][0] < cut:
            self._energy.popleft()
        events.append(SpeechStart(source=self.source, start=cut))
        return events


class VoiceActivity:
    """One source's VAD: any block sizes in, chunked at absolute multiples of ``CHUNK``."""

    def __init__(self, source: Source, settings: VadConfig, first_sample: int = 0, unheard: bool = False) -> None:
        self.probability = SpeechProbability()
        self.segmenter = Segmenter(source, settings)
        #: Live, the stretches near speech that it did not hear, read all the same (a file
        #: run reads every stretch: ``file_windows.GapFiller``).
        self.unheard = UnheardStretches(source, CHUNK, self.segmenter.max_utterance, first_sample) if unheard else None
        #: A resumed stream (``resume_from`` of a killed process) was judged up to here: no
        #: utterance it finds may begin before (the last one may have ended there).
        self.segmenter.last_end = first_sample
        #: Chunks start at multiples of CHUNK; a resumed stream starts at the next one.
        self._next = -(-first_sample // CHUNK) * CHUNK
        self._samples = np.zeros(0, np.float32)
        self._origin = first_sample
        self.chunks = 0

    def push(self, samples: np.ndarray, at: int) -> list[SpeechEvent]:
        """``samples`` begin at sample ``at`` (a gap after an overrun is allowed; samples
        before the first one this stream expects are not judged twice)."""
        expected = self._origin + len(self._samples)
        if at < expected:
            if self.chunks == 0:
                self._warm_up(samples[:expected - at])
            samples, at = samples[expected - at:], expected
        if at != expected:
            self._samples = np.zeros(0, np.float32)
            self._origin = at
            self._next = -(-at // CHUNK) * CHUNK
        self._samples = np.concatenate((self._samples, samples))
        count = (self._origin + len(self._samples) - self._next) // CHUNK
        if count <= 0:
            return []
        offset = self._next - self._origin
        chunks = self._samples[offset:offset + count * CHUNK].reshape(count, CHUNK)
        energies = np.einsum("ij,ij->i", chunks, chunks) / CHUNK
        events = []
        segmenter, unheard = self.segmenter, self.unheard
        for at, probability, energy in zip(range(self._next, self._next + count * CHUNK, CHUNK),
                                           self.probability(chunks).tolist(), energies.tolist()):
            heard = segmenter.push(at, probability, energy)
            if unheard is None:
                events += heard
                continue
            quiet = not segmenter.active and segmenter.candidate is None and segmenter.held_from is None
            events += unheard.judged(at, energy, heard, quiet)
            segmenter.last_end = max(segmenter.last_end, unheard.covered)  # an utterance never reaches back into one
        self._next += count * CHUNK
        self.chunks += count
        self._samples = self._samples[self._next - self._origin:]
        self._origin = self._next
        return events

    def finish(self, end: int) -> list[SpeechEnd]:
        return self._passed(self.segmenter.finish(end)) + (self.unheard.finish(end) if self.unheard else [])

    def hold(self, at: int) -> list[SpeechStart | SpeechEnd]:
        """Dictation began at ``at`` (``Segmenter.hold``)."""
        return self._passed(self.segmenter.hold(at))

    def release(self, at: int) -> tuple[list[SpeechEnd], int]:
        """Dictation ended at ``at`` (``Segmenter.release``)."""
        events, utterances = self.segmenter.release(at)
        return self._passed(events), utterances

    def _passed(self, events: list) -> list:
        return events if self.unheard is None else self.unheard.passed(events)

    def _warm_up(self, samples: np.ndarray) -> None:
        """Audio just before the first sample this VAD judges (a killed process's successor
        is given ``WARM_UP_S``): the model's state is carried through it, its
        probabilities unused. Begun cold inside an utterance, Silero hears its tail as
        silence earlier (160 ms earlier on a sentence's last word)."""
        whole = len(samples) // CHUNK * CHUNK
        if whole:
            self.probability(samples[len(samples) - whole:].reshape(-1, CHUNK))

    def resume_utterance(self, start: int) -> None:
        """The killed process this VAD replaces had announced an utterance from ``start``: it
        is in progress, and the audio before it is not judged again (its silence would end
        the utterance before it began)."""
        self.segmenter.resume(start)
        if self.unheard is not None:
            self.unheard.covered = max(self.unheard.covered, start)
        self._judge_from(start)

    def resume_after(self, end: int, heard: bool = True) -> None:
        """The killed process this VAD replaces had announced an utterance (``heard``) or an
        unheard stretch ending at ``end``: nothing before it is judged again, and the next
        utterance begins after it."""
        self.segmenter.last_end = max(self.segmenter.last_end, end)
        if self.unheard is not None:
            self.unheard.resume_after(end, heard)
        self._judge_from(end)

    def _judge_from(self, sample: int) -> None:
        if self._origin + len(self._samples) < sample:
            self._samples = np.zeros(0, np.float32)
            self._origin = sample
            self._next = -(-sample // CHUNK) * CHUNK

    @property
    def resume_from(self) -> int:
        """Where a VAD that replaces this one (its process was killed) must begin, to
        announce exactly what this one has not announced yet: at speech heard but not yet
        long enough to count (less the lead an utterance starts with), at the silence an
        utterance's end is waiting out (the utterance itself is told to it again), else
        at the first sample not judged."""
        segmenter = self.segmenter
        if segmenter.active:
            return self._next if segmenter.silence_from is None else segmenter.silence_from
        if segmenter.candidate is not None:
            return max(segmenter.candidate - segmenter.lead, segmenter.last_end)
        return self._next

    @property
    def processed(self) -> int:
        """The sample up to which speech has been judged (whole chunks)."""
        return self._next
