"""Echo cancellation: the speakers heard by the microphone, with cancellation off and on,
against a mic that does not hear them (headphones), in the same run.

A headless PulseAudio (``harness.headless``) with a loopback from the speaker sink into the
fake microphone (``headless.bleed``: 20, 80 and 200 ms late, at 70 % volume, and 80 ms at
full volume: the echo as loud as the talker), as laptop speakers reach their microphone.
The speakers play ~16 s of read speech (LibriSpeech); a talker (LJ Speech) speaks into the
mic over the speakers from 6 s on (double talk), and again alone after they stop. In the
early-talker cases the talker begins 2 s into the speakers, while the canceller is still
finding the path: the speakers' first words and the talker's share one mic utterance,
which the text-level net must split (``earwig/session/echo_filter``). The quick run is that
case.
Everything through the whole live pipeline (capture, mel + VAD + canceller, preview,
final; the text-level echo net on where cancellation is), as ``earwig monitor`` runs it.

Figures per case:
- bleed: the share of the speakers' words (the reference) found, in order and in runs of
  three or more, in the mic's kept text (the Finals the Mic column shows); "first words":
  the same of the speakers' first ten words;
- mic WER over the talker's two sentences, and over the double-talk one alone;
- echo Finals the net marked; ERLE (dB, while the speakers play and no one talks into the
  mic) of what the VAD hears (AEC3) and of what Whisper reads (the linear filter); the
  delay found; the cancellers' CPU per second of audio.
Goals: bleed <= 0.05, mic WER within +0.02 of no loopback, CPU <= 3 % of a core.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile

from earwig.audio.files import read_audio
from earwig.config import SAMPLE_RATE, Config, EchoConfig, SourceConfig
from earwig.messages import ActorFailed, EchoState, Final, SpeechEnd, Stats
from earwig.profiling.harness import REAL_AUDIO, headless, manifest_references
from earwig.profiling.harness.scoring import bleed, word_error_rate
from earwig.profiling.report import table
from earwig.session.keeper import Keeping, SessionKeeper
from earwig.shm import segments
from earwig.supervisor.plan import pcm_ring_name, transcription_plan
from earwig.supervisor.supervisor import Supervisor

SPEAKERS = ("librispeech_test-clean_1089-134686-0000.flac", "librispeech_dev-clean_1272-128104-0000.wav")
#: The talker's double-talk sentence (from TALKER_AFTER_S) and the one alone (from ALONE_AT_S).
TALKER = ("ljspeech_LJ001-0001.wav", "ljspeech_LJ001-0003.wav")
TALKER_AFTER_S = 6.0
#: The early-talker cases: the talker begins within the canceller's first seconds of far end.
EARLY_TALKER_S = 2.0
#: The speakers' words that pass before the canceller has found the path.
FIRST_WORDS = 10
ALONE_AT_S = 18.5
DELAYS_MS = (20, 80, 200)
VOLUME = 0.7
#: After the last sound: the VAD's hangover and the last Final.
SETTLE_S = 2.0


@dataclass
class Case:
    label: str
    delay_ms: int | None
    cancel: str
    volume: float = VOLUME
    talker_after_s: float = TALKER_AFTER_S
    mic: list[Final] = field(default_factory=list)
    echo_marked: int = 0
    state: EchoState | None = None
    cpu_per_s: float = 0.0
    #: The mic's position when the speakers began.
    began: int = 0


def _build(folder: Path, talker_after_s: float) -> tuple[Path, Path, float]:
    """The speakers' file, the talker's file from ``talker_after_s`` (silence until each
    sentence is due, counted from the speakers' start), and when the speakers end (s)."""
    speakers = np.concatenate([read_audio(REAL_AUDIO / name) for name in SPEAKERS])
    double, alone = (read_audio(REAL_AUDIO / name) for name in TALKER)
    gap = np.zeros(int((ALONE_AT_S - talker_after_s) * SAMPLE_RATE) - len(double), np.float32)
    soundfile.write(folder / "speakers.wav", speakers, SAMPLE_RATE)
    talker = folder / f"talker-{talker_after_s:g}.wav"
    soundfile.write(talker, np.concatenate([double, gap, alone]), SAMPLE_RATE)
    return folder / "speakers.wav", talker, len(speakers) / SAMPLE_RATE


async def _listen(case: Case, speakers: Path, talker: Path) -> None:
    config = Config(mic=SourceConfig(device="fakemic"), speakers=SourceConfig(device="sysout.monitor"),
                    echo=EchoConfig(cancel=case.cancel))
    prefix = segments.run_prefix()
    plan = transcription_plan(config, prefix)
    async with Supervisor(plan.rings, plan.actors, keeper=SessionKeeper(Keeping(echo_filter=plan.echo.on))) as supervisor:
        messages = supervisor.subscribe()
        mic = supervisor.rings[pcm_ring_name(prefix, "mic")]
        while any(supervisor.pid(spec.name) is None for spec in plan.actors) or not mic.published:
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        case.began = began = mic.published * mic.spec.item_len
        await headless.talk_over(speakers, talker, case.talker_after_s)
        await asyncio.sleep(SETTLE_S)
        owed: set[tuple[str, int]] = set()  # utterances ended (source, end) that no Final ends at yet
        while not messages.empty() or owed:  # every utterance heard has its Final (an echo split: its parts)
            message = await messages.get()
            if isinstance(message, SpeechEnd):
                owed.add((message.source, message.end))
            elif isinstance(message, Final):
                owed.discard((message.source, message.end))
                if message.source == "mic" and message.echo:
                    case.echo_marked += 1
                elif message.source == "mic" and message.text:
                    case.mic.append(message)
            elif isinstance(message, EchoState):
                case.state = message
            elif isinstance(message, Stats) and "mic_echo_cpu_s" in message.counters:
                case.cpu_per_s = message.counters["mic_echo_cpu_s"] / ((mic.published * mic.spec.item_len - began)
                                                                        / SAMPLE_RATE)
            elif isinstance(message, ActorFailed) and message.fatal:
                raise RuntimeError(message.error)
        case.mic = [final for final in case.mic if final.end > began]


def _db(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def run(quick: bool = False) -> str:
    references = manifest_references()
    played = " ".join(references[name] for name in SPEAKERS)
    first_words = " ".join(played.split()[:FIRST_WORDS])
    double_said, alone_said = (references[name] for name in TALKER)
    early = f"talker from {EARLY_TALKER_S:.0f} s"
    cases = [] if quick else [Case("no loopback (headphones)", None, "auto")]
    for delay in () if quick else DELAYS_MS:
        cases += [Case(f"{delay} ms, cancellation off", delay, "off"), Case(f"{delay} ms, cancellation on", delay, "on")]
    cases += [] if quick else [Case("80 ms at 100 % volume, cancellation on", 80, "on", volume=1.0),
                               Case(f"no loopback, {early}", None, "auto", talker_after_s=EARLY_TALKER_S)]
    cases.append(Case(f"80 ms, {early}, cancellation on", 80, "on", talker_after_s=EARLY_TALKER_S))
    with tempfile.TemporaryDirectory() as folder, headless.pulse_server():
        for case in cases:
            speakers, talker, speakers_s = _build(Path(folder), case.talker_after_s)
            if case.delay_ms is None:
                asyncio.run(_listen(case, speakers, talker))
            else:
                with headless.bleed(case.delay_ms, case.volume):
                    asyncio.run(_listen(case, speakers, talker))
    rows, baselines = [], {}  # the no-loopback case's WER by when the talker begins
    for case in cases:
        cut = case.began + int(speakers_s * SAMPLE_RATE)
        text = " ".join(final.text for final in case.mic)
        double = " ".join(final.text for final in case.mic if final.start < cut)
        wer = word_error_rate(f"{double_said} {alone_said}", text)
        if case.delay_ms is None:
            baselines[case.talker_after_s] = wer
        baseline = baselines.get(case.talker_after_s)
        state = case.state
        rows.append((case.label, f"{bleed(played, text):.3f}", f"{bleed(first_words, text):.3f}", f"{wer:.3f}",
                     "-" if baseline is None else f"{wer - baseline:+.3f}",
                     f"{word_error_rate(double_said, double):.3f}", str(case.echo_marked),
                     _db(state and state.erle_db), _db(state and state.linear_erle_db),
                     "-" if state is None or not state.heard else f"{state.delay_ms:.0f}",
                     "-" if state is None else f"{100 * case.cpu_per_s:.1f}"))
    lines = [f"echo: the speakers ({speakers_s:.0f} s of LibriSpeech) into the fake mic through a PulseAudio "
             f"loopback at {VOLUME:.0%} volume (unless the case says), a talker (LJ Speech) over them from "
             f"{TALKER_AFTER_S:.0f} s (unless the case says) and alone from {ALONE_AT_S:.1f} s; "
             "the whole live pipeline per case"]
    lines += table(("case", "bleed", "first words", "mic WER", "vs none", "double-talk WER", "echo Finals",
                    "ERLE dB VAD", "ERLE dB text", "delay ms", "CPU % core"), rows)
    lines.append("goals: bleed <= 0.05 with cancellation (0 of the first words), mic WER within +0.02 of no "
                 "loopback with the talker at the same time, CPU <= 3 % of a core")
    return "\n".join(lines)
