"""Audio files to text, as fast as this machine goes: ``earwig transcribe``.

Why not the live pipeline: a file has no listener waiting, so everything the live path
does to show text early is wasted on it (the preview, the speculative pass at every pause,
the rings, one process per stage). What a file needs is the kept text's quality and the
machine's throughput:

- the same frames and VAD as live (``LogMelStream``, ``VoiceActivity``), so a file is cut
  into utterances exactly as the live assistant would cut it;
- consecutive utterances joined into windows of up to ``vad.max_utterance_s``
  (``file_windows``), so sentences are read whole;
- windows of every file given batched through the encoder and the decoder together,
  several windows a forward pass, as faster-whisper's batched pipeline decodes (greedy, or
  Whisper's beam search with ``models.beam_size``);
- each window padded to a length that depends on it alone (``BUCKET_FRAMES``), so which
  other windows share its batch never changes its text: a file transcribed twice, alone
  or with others, gives the same Finals.

The model loads once for all the files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from earwig import model_store
from earwig.audio.files import read_audio
from earwig.audio.log_mel import HOP, bins_for_model, log_mel
from earwig.audio.vad import MARGIN_S, VoiceActivity
from earwig.compute import final_model, torch_device
from earwig.config import SAMPLE_RATE, Config
from earwig.decoding.file_windows import Span, WindowPacker, widened
from earwig.decoding.hallucinations import segment_finals
from earwig.decoding.model import LoadedModel, padded_length
from earwig.decoding.transcribe import Window, compile_alignment, transcribe
from earwig.messages import Final, SpeechEnd

#: Windows in one encoder and decoder batch. A decoder step on a CPU is mostly the read of
#: the weights (base: 106 MB of output projection alone), the same for one window or many;
#: on the 49 English files of shared/audio/real, 8 windows a batch took 45 s, 16 took 43 s.
BATCH = 16
#: A file's windows are padded with silence to the next multiple of this (5 s, coarser than
#: the live ``BUCKET_FRAMES``), plus ``PAD_FRAMES`` after the speech, so more windows of one
#: bucket batch together.
FILE_BUCKET_FRAMES = 500


@dataclass
class _File:
    path: str
    spans: list[Span]
    frames: np.ndarray
    finals: dict[int, list[Final]] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return len(self.finals) == len(self.spans)


def utterance_spans(audio: np.ndarray, frames: np.ndarray, config: Config, model: LoadedModel) -> list[Span]:
    """The file's windows: the live VAD's utterances, joined, and widened into the silence
    around them (``file_windows``). With the language to be detected, each utterance's is,
    and a window holds one language: a window decoded in English stops where German begins."""
    vad = VoiceActivity("mic", config.vad)
    ends = [e for e in vad.push(audio, 0) + vad.finish(len(audio)) if isinstance(e, SpeechEnd)]
    languages = [""] * len(ends)
    if model.language is None:
        for first in range(0, len(ends), BATCH):
            chunk = [frames[e.start // HOP:e.end // HOP] for e in ends[first:first + BATCH]]
            languages[first:first + BATCH] = model.detect_languages(model.encode(chunk))
    packer = WindowPacker(int(config.vad.max_utterance_s * SAMPLE_RATE))
    spans = [span for end, language in zip(ends, languages) for span in packer.push(end, language)]
    return widened(spans + packer.finish(), int(MARGIN_S * SAMPLE_RATE), len(audio))


def _file_length(frames: int) -> int:
    return padded_length(frames, FILE_BUCKET_FRAMES)


def transcribe_files(config: Config, paths: list[str], on_file: Callable[[str, list[Final]], None],
                     warn: Callable[[str], None] = lambda problem: None) -> None:
    """Every file's Finals, in file order, to ``on_file`` as soon as each file is done."""
    name = final_model(config.models.final)
    device = torch_device(config.device)
    model = LoadedModel(model_store.load(name, device), device, config.models.language, config.models.task,
                        config.models.initial_prompt)
    compile_alignment()
    bins = bins_for_model(name)
    files = []
    for path in paths:
        audio = read_audio(path, warn)
        frames = log_mel(audio, bins)
        files.append(_File(path, utterance_spans(audio, frames, config, model), frames))
    pending = [(file, i) for file in files for i in range(len(file.spans))]
    pending.sort(key=lambda item: _file_length(_frames_of(*item).shape[0]))
    reported = 0
    while pending or reported < len(files):
        batch, pending = _next_batch(pending)
        if batch:
            windows = [Window(_frames_of(file, i), language=file.spans[i].language) for file, i in batch]
            transcripts = transcribe(model, windows, config.models.beam_size,
                                     n_frames=_file_length(len(windows[-1].frames)))
            for (file, i), transcript in zip(batch, transcripts):
                span = file.spans[i]
                file.finals[i] = segment_finals("mic", span.start, span.end, transcript)
        while reported < len(files) and files[reported].done:
            file = files[reported]
            on_file(file.path, [final for i in range(len(file.spans)) for final in file.finals[i]])
            reported += 1


def _frames_of(file: _File, i: int) -> np.ndarray:
    span = file.spans[i]
    return file.frames[span.start // HOP:span.end // HOP]


def _next_batch(pending: list[tuple[_File, int]]) -> tuple[list[tuple[_File, int]], list[tuple[_File, int]]]:
    """Up to ``BATCH`` windows of the shortest bucket left (the list is sorted by bucket)."""
    if not pending:
        return [], pending
    bucket = _file_length(len(_frames_of(*pending[0])))
    same = [item for item in pending[:BATCH] if _file_length(len(_frames_of(*item))) == bucket]
    return same, pending[len(same):]
