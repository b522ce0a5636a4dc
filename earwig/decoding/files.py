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

With a transcription server (``server.url``), each window's samples go to the server
instead, ``SERVED_AT_ONCE`` at a time so that the server batches them (vLLM decodes the
requests that arrive together in one batch on its GPU), and no frames are computed here;
the lines still go out in the files' order. The server detects each window's language.
The stretches the VAD heard no speech in are not sent: a server answers no probability
earwig can trust to tell its inventions over silence from speech (vLLM's are absent), and
the decoding there cannot be kept from its temperature fallback.
A request that fails is one warning, and this machine's final model (loaded then) reads
that window and every one after it: a file run is not a live session, it has no
listener to bring back to the server.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterator

import msgspec
import numpy as np

from earwig import model_store
from earwig.audio.files import AudioStream, audio_stream
from earwig.audio.log_mel import HOP, LogMelStream, bins_for_model, log_mel
from earwig.audio.unheard import MIN_STRETCH_S
from earwig.audio.vad import MARGIN_S, VoiceActivity
from earwig.compute import final_model, torch_device
from earwig.config import SAMPLE_RATE, Config
from earwig.decoding.file_windows import GapFiller, Span, Widener, WindowPacker
from earwig.decoding.hallucinations import segment_finals
from earwig.decoding.model import LoadedModel, padded_length
from earwig.decoding.served import Server, ServerFailed, served_transcript
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
#: Windows sent to a transcription server before the oldest one's answer is waited for.
SERVED_AT_ONCE = 8


def transcribe_files(config: Config, paths: list[str], on_finals: Callable[[str, list[Final]], None],
                     warn: Callable[[str], None] = lambda problem: None,
                     progress: Callable[[str, float, float | None], None] = lambda path, done_s, total_s: None) -> None:
    """Each file's Finals to ``on_finals``, window by window in the files' order, as soon
    as every window before them is done; once with [] as each file begins. ``progress``:
    how far into which file the lines out reach, and its length where known."""
    if config.server.url:
        asyncio.run(_served_files(config, paths, on_finals, warn, progress))
        return
    model = _local_model(config)
    queue = WindowQueue(BATCH, MOST_WAITING)
    lengths: dict[str, float | None] = {}

    def decode(flush: bool) -> None:
        while batch := queue.next_batch(flush):
            windows = [Window(frames, language=span.language, speech_heard=not span.gap)
                       for _, (_, span, frames) in batch]
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
        for span, frames in windows_of(stream, config, model):
            queue.add(_file_length(len(frames)), (path, span, frames))
            decode(flush=False)
    decode(flush=True)
    for path, end, finals in queue.ready():  # files without speech: their start alone
        on_finals(path, finals)


def _local_model(config: Config) -> LoadedModel:
    device = torch_device(config.device)
    model = LoadedModel(model_store.load(final_model(config.models.final), device), device, config.models.language,
                        config.models.task, config.models.initial_prompt)
    compile_alignment()
    return model


async def _served_files(config: Config, paths: list[str], on_finals: Callable[[str, list[Final]], None],
                        warn: Callable[[str], None], progress: Callable[[str, float, float | None], None]) -> None:
    """``transcribe_files`` through the server: the windows' requests in flight together,
    their lines out in order; after a failure, this machine's model reads the rest."""
    server = Server(config.server, config.models.task, config.models.initial_prompt)
    by_server = f"{server.model} at {server.url}"
    language = None if config.models.language == "auto" else config.models.language
    failed: list[str] = []  # the problem that sent the rest to this machine's model
    local: list[LoadedModel] = []  # loaded at the first failure
    local_turn = asyncio.Lock()  # one window at a time through the local model
    lengths: dict[str, float | None] = {}
    out: deque[tuple[str, int, asyncio.Future]] = deque()  # in the files' order

    async def read(span: Span, samples: np.ndarray) -> list[Final]:
        if not failed:
            try:
                served = await server.transcribe(samples, span.language or language)
                lines = segment_finals("mic", span.start, span.end, served_transcript(served, len(samples) / SAMPLE_RATE))
                return [msgspec.structs.replace(final, model=by_server) for final in lines]
            except ServerFailed as failure:
                if not failed:
                    failed.append(failure.problem)
                    warn(f"{failure.problem}; this machine's model reads the rest")
        async with local_turn:
            if not local:
                local.append(await asyncio.to_thread(_local_model, config))
            frames = log_mel(samples, local[0].whisper.dims.n_mels)
            window = Window(frames, language=span.language, speech_heard=not span.gap)
            [transcript] = await asyncio.to_thread(transcribe, local[0], [window],
                                                   config.models.beam_size, n_frames=_file_length(len(frames)))
        return segment_finals("mic", span.start, span.end, transcript)

    async def lines_out(most: int) -> None:
        while out and (len(out) > most or out[0][2].done()):
            path, end, lines = out.popleft()
            on_finals(path, await lines)
            progress(path, end / SAMPLE_RATE, lengths[path])

    try:
        for path in paths:
            stream = audio_stream(path, warn)
            lengths[path] = stream.seconds
            begun = asyncio.get_running_loop().create_future()
            begun.set_result([])
            out.append((path, 0, begun))
            windows = windows_of(stream, config, None, samples=True, gaps=False)
            while (window := await asyncio.to_thread(next, windows, None)) is not None:
                out.append((path, window[0].end, asyncio.ensure_future(read(*window))))
                await lines_out(SERVED_AT_ONCE)
        await lines_out(0)
    finally:
        for _, _, lines in out:
            lines.cancel()
        await server.aclose()


def windows_of(stream: AudioStream, config: Config, model: LoadedModel | None,
             samples: bool = False, gaps: bool = True) -> Iterator[tuple[Span, np.ndarray]]:
    """The file's windows and their frames (with ``samples``: their samples, and no frames
    are computed), as its blocks are decoded: the live VAD's utterances, joined
    (``WindowPacker``), widened into the silence around them (``Widener``), and with
    ``gaps`` the stretches the VAD left out between them (``GapFiller``). With the
    language to be detected by ``model``, each utterance's is, and a window holds one
    language: a window decoded in English stops where German begins (``model`` None: a
    server detects each window's)."""
    bins = bins_for_model(final_model(config.models.final))
    vad = VoiceActivity("mic", config.vad)
    mel = None if samples else LogMelStream([bins])
    kept = _Kept((), 1) if samples else _Kept((bins,), HOP)
    most = int(config.vad.max_utterance_s * SAMPLE_RATE)
    packer, widener = WindowPacker(most), Widener(int(MARGIN_S * SAMPLE_RATE))
    filler = GapFiller(int(MIN_STRETCH_S * SAMPLE_RATE), most, read=gaps)
    detect = model is not None and model.language is None
    ended: list[SpeechEnd] = []  # utterances waiting for their language
    position = 0

    def spans(final: bool) -> list[Span]:
        nonlocal ended
        if not ended or (detect and not final and len(ended) < BATCH and ended[-1].end - ended[0].start < DETECT_WITHIN):
            return []
        languages = model.detect_languages(model.encode([kept.between(e.start, e.end) for e in ended])) \
            if detect else [""] * len(ended)
        out = [read for end, language in zip(ended, languages) for span in packer.push(end, language)
               for wide in widener.push(span) for read in filler.push(wide)]
        ended = []
        return out

    for block in stream.blocks:
        kept.append(block if mel is None else mel.push(block)[bins])
        ended += [e for e in vad.push(block, position) if isinstance(e, SpeechEnd)]
        position += len(block)
        for span in spans(final=False):
            yield span, kept.between(span.start, span.end)
        waiting = [s for s in (ended[0].start if ended else None, packer.open_start, widener.held_start,
                               vad.segmenter.start) if s is not None]
        needed = min(waiting, default=position) - int((MARGIN_S + config.vad.lead_ms / 1000) * SAMPLE_RATE)
        for span in filler.idle(needed):
            yield span, kept.between(span.start, span.end)
        kept.forget_before(min(needed, filler.covered))
    if mel is not None:
        kept.append(mel.finish(position)[bins])
    ended += vad.finish(position)
    last = spans(final=True) + [read for span in packer.finish() for wide in widener.push(span)
                                for read in filler.push(wide)]
    last += [read for wide in widener.finish(position) for read in filler.push(wide)] + filler.finish(position)
    for span in last:
        yield span, kept.between(span.start, span.end)


class _Kept:
    """What a file run still needs of its audio from the oldest sample a window may still
    need on: its log-mel frames (rows of ``HOP`` samples each) or its samples (rows of one)."""

    def __init__(self, row: tuple[int, ...], samples_per_row: int) -> None:
        self._rows, self._first, self._per = np.zeros((0, *row), np.float32), 0, samples_per_row

    def append(self, rows: np.ndarray) -> None:
        self._rows = np.concatenate((self._rows, rows))

    def between(self, start: int, end: int) -> np.ndarray:
        """The rows of samples ``[start, end)`` (a copy: they outlive the buffer)."""
        return self._rows[start // self._per - self._first:end // self._per - self._first].copy()

    def forget_before(self, sample: int) -> None:
        drop = min(max(0, sample // self._per - self._first), len(self._rows))
        if drop:
            self._rows, self._first = self._rows[drop:], self._first + drop


def _file_length(frames: int) -> int:
    return padded_length(frames, FILE_BUCKET_FRAMES)
