"""Latency of the live text: speech onset -> first Partial, end of speech -> Final, against
openai-whisper's ``transcribe()`` of the same utterance with the same model (the baseline),
plus model load time and memory before load, after load and after eviction.

Two baselines for (b): ``transcribe()``'s time alone, as if it began the instant the speech
ended, and a pipeline that starts ``transcribe()`` when the same VAD's SpeechEnd arrives
(the hangover included, as in any VAD-cut pipeline). The first is the stricter: the VAD's
500 ms hangover alone is about half of it on this CPU.

Real time: one file replayed as the microphone at the pace it was spoken, through capture,
mel + VAD, preview and final processes, as the app runs them. Times are from the moment
the sample was captured (its stamp in the PCM ring) to the moment the message reached the
supervisor. The first utterance loads the models (lazily) and is left out of the latency
figures; its load time is reported apart. After the last utterance the models are evicted
(``idle_evict_s`` is set to a few seconds here) and the memory measured again.
"""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil
import soundfile
import torch

from earwig import model_store
from earwig.audio.files import read_audio
from earwig.compute import final_model
from earwig.config import SAMPLE_RATE, Config, ModelsConfig, SourceConfig
from earwig.messages import Final, ModelState, Partial, SourceEnded, SpeechEnd
from earwig.profiling.harness import SHARED_AUDIO
from earwig.profiling.report import table
from earwig.shm import segments
from earwig.supervisor.plan import pcm_ring_name, preview_model, transcription_plan
from earwig.supervisor.supervisor import Supervisor

SENTENCES = (("en-us", "The quick brown fox jumps over the lazy dog near the river bank."),
             ("en-gb", "Please remember to water the plants every morning before work."),
             ("en-us", "Our quarterly revenue grew by twelve percent compared to last year."),
             ("en-gb", "Turn left at the second traffic light and park behind the library."),
             ("en-us", "The committee will announce the winners of the competition tomorrow."),
             ("en-gb", "Scientists discovered a new species of frog in the rain forest."),
             ("en-us", "I would like a cup of coffee with milk and no sugar please."),
             ("en-gb", "The train to Boston leaves from platform nine at half past six."))
JFK = SHARED_AUDIO / "jfk.flac"
JFK_SAID = ("And so my fellow Americans, ask not what your country can do for you, "
            "ask what you can do for your country.")
GAP_S = 3.0
EVICT_S = 4.0


@dataclass
class Utterance:
    audio: np.ndarray
    onset: int  # first and last sample above the noise floor, in the replayed file
    end: int
    first_partial_s: float | None = None
    final_s: float | None = None
    #: When the VAD called the speech ended (SpeechEnd): the part of ``final_s`` spent
    #: waiting out the hangover, not transcribing.
    speech_end_s: float | None = None
    said: str = ""


@dataclass
class Live:
    utterances: list[Utterance]
    load_s: dict[str, float] = field(default_factory=dict)
    model_bytes: dict[str, int] = field(default_factory=dict)
    rss: dict[str, int] = field(default_factory=dict)
    #: The text of every Final, in order.
    texts: list[str] = field(default_factory=list)


def build(folder: Path, count: int, real_speech: bool = True) -> tuple[Path, list[Utterance]]:
    """espeak-ng sentences (and jfk.flac, real speech, where ../shared has it and
    ``real_speech`` asks for it), GAP_S apart. A smoke run leaves jfk.flac's 11 s out: every
    benchmark that replays this file in real time is that much shorter."""
    clips = []
    for i, (voice, text) in enumerate(SENTENCES[:count]):
        wav = folder / f"s{i}.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(wav), text], check=True)
        clips.append((read_audio(wav), text))
    if real_speech and JFK.is_file():
        clips.insert(1, (read_audio(JFK), JFK_SAID))
    parts, utterances, at = [np.zeros(SAMPLE_RATE, np.float32)], [], SAMPLE_RATE
    for clip, text in clips:
        loud = np.flatnonzero(np.abs(clip) > 0.01)
        utterances.append(Utterance(clip, at + int(loud[0]), at + int(loud[-1]) + 1, said=text))
        parts += [clip, np.zeros(int(GAP_S * SAMPLE_RATE), np.float32)]
        at += len(clip) + int(GAP_S * SAMPLE_RATE)
    path = folder / "speech.wav"
    soundfile.write(path, np.concatenate(parts), SAMPLE_RATE)
    return path, utterances


def _tree_rss(supervisor: Supervisor, names: list[str]) -> int:
    total = psutil.Process().memory_info().rss
    for name in names:
        pid = supervisor.pid(name)
        if pid is not None:
            total += psutil.Process(pid).memory_info().rss
    return total


async def live(path: Path, utterances: list[Utterance]) -> Live:
    config = Config(mic=SourceConfig(replay=str(path)), speakers=SourceConfig(enabled=False),
                    models=ModelsConfig(idle_evict_s=EVICT_S))
    prefix = segments.run_prefix()
    plan = transcription_plan(config, prefix)
    names = [spec.name for spec in plan.actors]
    result = Live(utterances)
    async with Supervisor(plan.rings, plan.actors) as supervisor:
        messages = supervisor.subscribe()
        captured_ns = supervisor.rings[pcm_ring_name(prefix, "mic")].stamp_ns

        def starting(start: int) -> Utterance | None:
            """The utterance a VAD segment starting at ``start`` begins (or belongs to)."""
            return next((u for u in utterances if u.onset - SAMPLE_RATE <= start < u.end), None)

        def ending(start: int, stop: int) -> list[Utterance]:
            """The utterances whose speech a VAD segment ``[start, stop)`` brings to an end."""
            return [u for u in utterances if start <= u.end <= stop + SAMPLE_RATE // 2]

        while any(supervisor.pid(n) is None for n in names):
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        result.rss["before load"] = _tree_rss(supervisor, names)
        ended = False
        finals = ends = 0

        def evicted() -> bool:
            """Both models gone idle: before the replay's end is reported, or after it."""
            return all(supervisor.evicted(role) for role in ("preview", "final"))

        while not (ended and finals == ends and evicted()):
            message = await messages.get()
            now = time.monotonic_ns()
            if isinstance(message, Partial):
                u = starting(message.start)
                if u is not None and u.first_partial_s is None:
                    u.first_partial_s = (now - captured_ns(u.onset)) / 1e9
            elif isinstance(message, Final):
                finals += 1
                result.texts.append(message.text)
                for u in ending(message.start, message.end) if message.heard else []:  # ``audio.unheard``
                    u.final_s = (now - captured_ns(u.end)) / 1e9
            elif isinstance(message, SpeechEnd):
                ends += 1
                for u in ending(message.start, message.end) if message.heard else []:
                    u.speech_end_s = (now - captured_ns(u.end)) / 1e9
            elif isinstance(message, SourceEnded):
                ended = True
            elif isinstance(message, ModelState) and message.state == "ready":
                result.load_s[message.role] = message.load_s
                result.model_bytes[message.role] = message.memory_bytes
                if len(result.load_s) == 2 and "after load" not in result.rss:
                    result.rss["after load"] = _tree_rss(supervisor, names)
        await asyncio.sleep(0.5)
        result.rss["after eviction"] = _tree_rss(supervisor, names)
    return result


def baseline(model_name: str, utterances: list[Utterance]) -> list[float]:
    """openai-whisper's transcribe() of each utterance's audio alone, same model and threads."""
    model = model_store.load(model_name)
    model.transcribe(utterances[0].audio, fp16=False, language="en")  # its own warm-up
    times = []
    for u in utterances:
        started = time.perf_counter()
        model.transcribe(u.audio, fp16=False, language="en")
        times.append(time.perf_counter() - started)
    return times


def _p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def run(quick: bool = False) -> str:
    with tempfile.TemporaryDirectory() as folder:
        path, utterances = build(Path(folder), 2 if quick else len(SENTENCES), real_speech=not quick)
        measured = asyncio.run(live(path, utterances))
    timed = utterances[1:]  # the first one waited for the models to load
    onset = [u.first_partial_s for u in timed if u.first_partial_s is not None]
    end = [u.final_s for u in timed if u.final_s is not None]
    vad = [u.speech_end_s for u in timed if u.speech_end_s is not None]
    models = ModelsConfig()
    final_name, preview_name = final_model(models.final), preview_model(models)
    base = baseline(final_name, timed)
    # A pipeline without earwig's final pass: the same VAD's SpeechEnd, then transcribe().
    piped = [u.speech_end_s + b for u, b in zip(timed, base) if u.speech_end_s is not None]
    # The preview is best-effort (niced): on a busy machine an utterance can get its Final
    # before any Partial, and then has no onset latency to count.
    first = (f"{_p(onset, 50):.2f}", f"{_p(onset, 95):.2f}") if onset else ("-", "-")
    rows = [("(a) onset -> first Partial", *first, "", "", f"<= 1 s ({len(onset)} of {len(timed)} had one)"),
            ("(b) end of speech -> Final, vs transcribe() alone", f"{_p(end, 50):.2f}", f"{_p(end, 95):.2f}",
             f"{_p(base, 50):.2f}", f"{_p(end, 50) / _p(base, 50):.2f}x", "<= 0.5x"),
            ("    vs SpeechEnd, then transcribe()", "", "", f"{_p(piped, 50):.2f}",
             f"{_p(end, 50) / _p(piped, 50):.2f}x", "<= 0.5x"),
            ("    of which: end of speech -> SpeechEnd (VAD)", f"{_p(vad, 50):.2f}", f"{_p(vad, 95):.2f}",
             "", "", "")]
    lines = [f"latency: {len(timed)} utterances replayed in real time ({len(onset)} with a Partial), "
             f"preview {preview_name}, final {final_name}, {torch.get_num_threads()} threads, "
             f"{psutil.cpu_count()} cores; seconds from capture of the sample; baseline: "
             f"whisper transcribe() of the same utterance, same model"]
    lines += table(("", "p50 s", "p95 s", "baseline p50 s", "p50 / baseline", "goal"), rows)
    lines.append("")
    lines += table(("memory (all earwig processes, RSS)", "MB"),
                   [(k, f"{v / 2**20:.0f}") for k, v in measured.rss.items()])
    lines.append("")
    lines += table(("model", "load s (first speech -> ready)", "memory MB"),
                   [(f"{role}: {preview_name if role == 'preview' else final_name}",
                     f"{measured.load_s[role]:.2f}", f"{measured.model_bytes[role] / 2**20:.0f}")
                    for role in sorted(measured.load_s)])
    return "\n".join(lines)
