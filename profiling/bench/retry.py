"""Reading a line again (the monitor's ``r``, ``earwig ctl retry``): seconds of work per second
of the line, and the text's word error rate, against the live final pass over the same lines
in the same run.

The lines: the English recordings of ``shared/audio/real`` short enough to be one live
utterance (``vad.max_utterance_s``), each a line of its own with no text before it (so no
prompt). The live pass: ``transcribe`` greedy over the frames the mel actor would have
published (they are in the ring when the Final is due; not timed). The retry:
``actors.final_retry`` as the final actor runs it: the line read from the session's kept
audio (a 16-bit FLAC), its frames computed, beam search 5. Two pairs: base live and base again (the CPU's final model, with
no larger model installed: ``models.retry`` "auto" is then the final model itself), and
tiny.en live with base for the retry (the next larger model installed). Each model reads one
line first, untimed (first calls pick kernels). Goal: a retry of a sentence is done before
the user has finished reading it again: well under its own length.
"""

from __future__ import annotations

import csv
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

from earwig import model_store
from earwig.actors.final_retry import line_samples, retried
from earwig.audio.files import read_audio
from earwig.audio.log_mel import log_mel
from earwig.compute import torch_device
from earwig.config import SAMPLE_RATE, Config
from earwig.decoding.hallucinations import kept_final
from earwig.decoding.model import LoadedModel
from earwig.decoding.transcribe import Window, compile_alignment, transcribe
from earwig.messages import Retry
from earwig.profiling.harness import REAL_AUDIO
from earwig.profiling.harness.scoring import word_error_rate
from earwig.profiling.report import table

#: (live final model, retry model)
PAIRS = (("base", "base"), ("tiny.en", "base"))
QUICK_LINES = 2


def _lines(quick: bool) -> list[tuple[str, str]]:
    """(file, reference) of each English recording short enough to be one utterance; the
    shortest in a quick run."""
    longest = Config().vad.max_utterance_s
    with open(REAL_AUDIO / "MANIFEST.tsv", newline="") as manifest:
        rows = [row for row in csv.DictReader(manifest, delimiter="\t")
                if row["language"] == "en" and row["reference"] and float(row["seconds"]) <= longest]
    if quick:
        rows = sorted(rows, key=lambda row: float(row["seconds"]))[:QUICK_LINES]
    return sorted((row["file"], row["reference"]) for row in rows)


def _kept(folder: Path, name: str, said: np.ndarray) -> Retry:
    """The line as a session keeps it: after the audio before it (here 2 s of silence)."""
    before = 2 * SAMPLE_RATE
    path = folder / f"{Path(name).stem}-mic.flac"
    soundfile.write(path, np.concatenate((np.zeros(before, np.float32), said)), SAMPLE_RATE, subtype="PCM_16")
    return Retry(source="mic", start=before, end=before + len(said), audio=str(path))


def _measure(lines: list[tuple[str, str]], folder: Path) -> list[tuple]:
    device = torch_device("auto")
    models = {name: LoadedModel(model_store.load(name, device), device) for name in {m for pair in PAIRS for m in pair}}
    compile_alignment()
    audio = {name: read_audio(REAL_AUDIO / name) for name, _ in lines}
    kept = {name: _kept(folder, name, audio[name]) for name, _ in lines}
    seconds = sum(len(a) for a in audio.values()) / SAMPLE_RATE
    rows = []
    for live_name, retry_name in PAIRS:
        live, retry_model = models[live_name], models[retry_name]
        first = lines[0][0]
        transcribe(live, [Window(log_mel(audio[first], live.whisper.dims.n_mels))])  # untimed: warm
        retried(retry_model, kept[first], line_samples(kept[first], None))
        live_s = retry_s = 0.0
        live_texts, retry_texts = [], []
        for name, _ in lines:
            frames = log_mel(audio[name], live.whisper.dims.n_mels)
            started = time.perf_counter()
            [transcript] = transcribe(live, [Window(frames)])
            live_s += time.perf_counter() - started
            live_texts.append(kept_final("mic", 0, len(audio[name]), transcript).text)
            started = time.perf_counter()
            final = retried(retry_model, kept[name], line_samples(kept[name], None))
            retry_s += time.perf_counter() - started
            retry_texts.append(final.text)
        references = [reference for _, reference in lines]
        live_wer, retry_wer = word_error_rate(references, live_texts), word_error_rate(references, retry_texts)
        rows.append((f"live {live_name} greedy", f"{live_s / seconds:.3f}", "1.00x", f"{live_wer:.3f}", ""))
        rows.append((f"retry of {live_name} by {retry_name} beam 5", f"{retry_s / seconds:.3f}", f"{retry_s / live_s:.2f}x",
                     f"{retry_wer:.3f}", f"{retry_wer - live_wer:+.3f}"))
    return rows, seconds, device


def run(quick: bool = False) -> str:
    lines = _lines(quick)
    with tempfile.TemporaryDirectory() as folder:
        rows, seconds, device = _measure(lines, Path(folder))
    out = [f"retry: {len(lines)} English lines of shared/audio/real ({seconds:.0f} s), each read live and "
           f"again on {device}; s of work per s of audio, and WER against the MANIFEST"]
    out += table(("pass", "s per audio s", "vs live", "WER", "WER vs live"), rows)
    out.append("goal: a retry well under its line's length (s per audio s < 1)")
    return "\n".join(out)
