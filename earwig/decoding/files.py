"""Audio files to text, as fast as this machine goes: ``earwig transcribe``.

Why not the live pipeline: a file has no listener waiting, so everything the live path
does to show text early is wasted on it (the preview, the speculative pass at every pause,
the rings, one process per stage). What a file needs is the kept text's quality and the
machine's throughput:

- the same frames and VAD as live (``LogMelStream``, ``VoiceActivity``), so a file is cut
  into utterances exactly as the live assistant would cut it;
- consecutive utterances joined into windows of up to ``vad.max_utterance_s``
  (``file_windows``), so sentences are read whole;
- windows batched through the encoder and the decoder together, several windows a forward
  pass, as faster-whisper's batched pipeline decodes (greedy, or Whisper's beam search with
  ``models.beam_size``), across the files given;
- each window padded to a length that depends on it alone (``FILE_BUCKET_FRAMES``), so which
  other windows share its batch never changes its text: a file transcribed twice, alone
  or with others, gives the same Finals.

Why streamed: a file is decoded, cut and transcribed block by block, and each window's
lines go out as soon as it and every window before it are done (``window_queue``). A
recording of an hour prints its first lines within a minute, keeps them when stopped, and
holds in memory a few windows' frames, not the hour's.

The model loads once for all the files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from earwig import model_store
from earwig.audio.files import AudioStream, audio_stream
from earwig.audio.log_mel import HOP, LogMelStream, bins_for_model
from earwig.audio.vad import MARGIN_S, VoiceActivity
from earwig.compute import final_model, torch_device
from earwig.config import SAMPLE_RATE, Config
from earwig.decoding.file_windows import Span, Widener, WindowPacker
from earwig.decoding.hallucinations import segment_finals
from earwig.decoding.model import LoadedModel, padded_length
from earwig.decoding.transcribe import Window, compile_alignment, transcribe
from earwig.decoding.window_queue import WindowQueue
from earwig.messages import Final, SpeechEnd

#: Windows in one encoder and decoder batch. A decoder step on a CPU is mostly the read of
#: the weights (base: 106 MB of output projection alone), the same for one window or many;
#: on the 49 English files of shared/audio/real, 8 windows a batch took 45 s, 16 took 43 s.
BATCH = 16
#: A file's windows are padded with silence to the next multiple of this (5 s, coarser than
#: the live ``BUCKET_FRAMES``), plus ``PAD_FRAMES`` after the speech, so more windows of one
#: bucket batch together.
FILE_BUCKET_FRAMES = 500
#: Windows that may wait for their bucket to fill before the oldest one's is decoded anyway
#: (``window_queue``). On 16 minutes of real speech (base, 2 cores): one batch's worth gave
#: the first line at 31 s but 90.8 s in all; two, 28.5 s and 76.7 s, as fast as decoding
#: every window sorted by length at the end (75.5 s, the first line at 74.7 s).
MOST_WAITING = 2 * BATCH
#: Utterances wait for their language (detected several at a time) no longer than this span.
DETECT_WITHIN = 60 * SAMPLE_RATE


def transcribe_files(config: Config, paths: list[str], on_finals: Callable[[str, list[Final]], None],
                     warn: Callable[[str], None] = lambda problem: None,
                     progress: Callable[[str, float, float | None], None] = lambda path, done_s, total_s: None) -> None:
    """Each file's Finals to ``on_finals``, window by window in the files' order, as soon
    as every window before them is done; once with [] as each file begins. ``progress``:
    how far into which file the lines out reach, and its length where known."""
    name = final_model(config.models.final)
    device = torch_device(config.device)
    model = LoadedModel(model_store.load(name, device), device, config.models.language, config.models.task,
                        config.models.initial_prompt)
    compile_alignment()
    queue = WindowQueue(BATCH, MOST_WAITING)
    lengths: dict[str, float | None] = {}

    def decode(flush: bool) -> None:
        while batch := queue.next_batch(flush):
            windows = [Window(frames, language=span.language) for _, (_, span, frames) in batch]
            transcripts = transcribe(model, windows, config.models.beam_size,
                                     n_frames=_file_length(len(windows[0].frames)))
            for (ticket, (path, span, _)), transcript in zip(batch, transcripts):
                queue.done(ticket, (path, span.end, segment_finals("mic", span.start, span.end, transcript)))
            for path, end, finals in queue.ready():
                on_finals(path, finals)
                progress(path, end / SAMPLE_RATE, lengths[path])

    for path in paths:
        stream = audio_stream(path, warn)
        lengths[path] = stream.seconds
        queue.add_done((path, 0, []))
        for span, frames in _windows(stream, config, model):
            queue.add(_file_length(len(frames)), (path, span, frames))
            decode(flush=False)
    decode(flush=True)
    for path, end, finals in queue.ready():  # files without speech: their start alone
        on_finals(path, finals)


def _windows(stream: AudioStream, config: Config, model: LoadedModel) -> Iterator[tuple[Span, np.ndarray]]:
    """The file's windows and their frames, as its blocks are decoded: the live VAD's
    utterances, joined (``WindowPacker``), widened into the silence around them
    (``Widener``). With the language to be detected, each utterance's is, and a window holds
    one language: a window decoded in English stops where German begins."""
    bins = bins_for_model(final_model(config.models.final))
    vad, mel, frames = VoiceActivity("mic", config.vad), LogMelStream([bins]), _Frames(bins)
    packer, widener = WindowPacker(int(config.vad.max_utterance_s * SAMPLE_RATE)), Widener(int(MARGIN_S * SAMPLE_RATE))
    detect = model.language is None
    ended: list[SpeechEnd] = []  # utterances waiting for their language
    position = 0

    def spans(final: bool) -> list[Span]:
        nonlocal ended
        if not ended or (detect and not final and len(ended) < BATCH and ended[-1].end - ended[0].start < DETECT_WITHIN):
            return []
        languages = model.detect_languages(model.encode([frames.between(e.start, e.end) for e in ended])) \
            if detect else [""] * len(ended)
        out = [wide for end, language in zip(ended, languages) for span in packer.push(end, language)
               for wide in widener.push(span)]
        ended = []
        return out

    for block in stream.blocks:
        frames.append(mel.push(block)[bins])
        ended += [e for e in vad.push(block, position) if isinstance(e, SpeechEnd)]
        position += len(block)
        for span in spans(final=False):
            yield span, frames.between(span.start, span.end)
        waiting = [s for s in (ended[0].start if ended else None, packer.open_start, widener.held_start,
                               vad.segmenter.start) if s is not None]
        frames.forget_before(min(waiting, default=position) - int((MARGIN_S + config.vad.lead_ms / 1000) * SAMPLE_RATE))
    frames.append(mel.finish(position)[bins])
    ended += vad.finish(position)
    last = spans(final=True) + [wide for span in packer.finish() for wide in widener.push(span)] + widener.finish(position)
    for span in last:
        yield span, frames.between(span.start, span.end)


class _Frames:
    """A file's log-mel frames from the oldest one a window may still need on."""

    def __init__(self, bins: int) -> None:
        self._frames, self._first = np.zeros((0, bins), np.float32), 0

    def append(self, frames: np.ndarray) -> None:
        self._frames = np.concatenate((self._frames, frames))

    def between(self, start: int, end: int) -> np.ndarray:
        """The frames of samples ``[start, end)`` (a copy: they outlive the buffer)."""
        return self._frames[start // HOP - self._first:end // HOP - self._first].copy()

    def forget_before(self, sample: int) -> None:
        drop = min(max(0, sample // HOP - self._first), len(self._frames))
        if drop:
            self._frames, self._first = self._frames[drop:], self._first + drop


def _file_length(frames: int) -> int:
    return padded_length(frames, FILE_BUCKET_FRAMES)
