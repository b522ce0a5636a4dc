"""The mic's echo canceller on real speech: what the speakers play is taken out of the mic,
the talker is kept, a mic with no echo is left as it was, and the two sources' clocks are
lined up by their capture stamps."""

import asyncio

import numpy as np
import pytest
import soundfile
import whisper

from earwig import model_store
from earwig.audio import linear_echo
from earwig.audio.echo import (FRAME, CleanMic, EchoPath, MicEcho, RingClock, far_offset,
                               gcc_phat_lag)
from earwig.audio.files import read_audio
from earwig.config import SAMPLE_RATE, Config, EchoConfig, SourceConfig
from earwig.messages import EchoState, SpeechEnd, SpeechStart, Stats
from earwig.profiling.harness import REAL_AUDIO, headless, manifest_references
from earwig.profiling.harness.scoring import word_error_rate
from earwig.supervisor.plan import echo_cancelled, listen_plan, pcm_ring_name
from earwig.supervisor.supervisor import Supervisor

FAR_FILES = ("librispeech_test-clean_1089-134686-0000.flac", "librispeech_dev-clean_1272-128104-0000.wav",
             "librispeech_dev-clean_2086-149220-0033.wav", "librispeech_test-clean_1221-135766-0002.wav")
TALKER = "ljspeech_LJ001-0001.wav"
BLOCK = 10 * FRAME


@pytest.fixture(scope="module")
def far() -> np.ndarray:
    """About 40 s of read speech: what the speakers play."""
    return np.concatenate([read_audio(REAL_AUDIO / name) for name in FAR_FILES])


@pytest.fixture(scope="module")
def talker() -> np.ndarray:
    return read_audio(REAL_AUDIO / TALKER)


def room(far: np.ndarray, delay_s: float, gain: float = 0.3) -> np.ndarray:
    """The speakers heard ``delay_s`` later (negative: earlier, as a loopback with less
    buffering than the speakers' capture hears them) through a room's decaying reflections."""
    response = np.zeros(2400, np.float32)
    response[0] = gain
    response += np.random.default_rng(0).standard_normal(2400).astype(np.float32) * np.exp(-np.arange(2400) / 400) * gain * 0.3
    echo = np.convolve(far, response)[:len(far)].astype(np.float32)
    shift = int(abs(delay_s) * SAMPLE_RATE)
    if delay_s >= 0:
        return np.concatenate((np.zeros(shift, np.float32), echo[:len(far) - shift]))
    return np.concatenate((echo[shift:], np.zeros(shift, np.float32)))


def cancel(mic: np.ndarray, far: np.ndarray, talking_from: int | None = None) -> tuple[CleanMic, MicEcho]:
    """The mic through MicEcho block by block, the far end read at its shift as the mel
    actor reads it; from ``talking_from`` on the VAD hears the talker (as the mel actor's
    does)."""
    echo, vad, frames = MicEcho(), [], []
    for at in range(0, len(mic) // BLOCK * BLOCK, BLOCK):
        wanted = np.arange(at - echo.shift, at - echo.shift + BLOCK)
        block = np.where((wanted >= 0) & (wanted < len(far)), far[np.clip(wanted, 0, len(far) - 1)], 0).astype(np.float32)
        talking = talking_from is not None and at >= talking_from
        clean = echo.clean(mic[at:at + BLOCK], block, talking)
        vad.append(clean.vad)
        frames.append(clean.frames)
    return CleanMic(vad=np.concatenate(vad), frames=np.concatenate(frames)), echo


def power_db(audio: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(audio.astype(np.float64) ** 2)))


@pytest.mark.pure
@pytest.mark.parametrize("delay_s", [0.02, 0.08, 0.2, -0.3])
def test_the_speakers_are_taken_out_of_the_mic_and_the_talker_is_kept(far, talker, delay_s):
    """Echo alone for the first half, the talker over it after. Once the path is found:
    what the VAD hears has > 25 dB less echo, and keeps the talker within 4 dB (AEC3's
    suppressor takes 3.1-3.2 dB in double talk as loud as this; it would take 10 dB and
    more from a talker it erased); what Whisper reads has > 10 dB less echo (the linear
    filter: 14-27 dB) and the talker within 1 dB; the delay is found."""
    half = len(far) // 2
    mic = room(far, delay_s)
    mic[half:half + len(talker)] += talker[:len(far) - half]
    clean, echo = cancel(mic, far, talking_from=half)
    settled = slice(len(far) // 4, half)
    assert power_db(mic[settled]) - power_db(clean.vad[settled]) > 25
    assert power_db(mic[settled]) - power_db(clean.frames[settled]) > 10
    talking = slice(half, half + min(len(talker), len(mic) - half))
    said = power_db(talker[:talking.stop - half])
    assert abs(power_db(clean.vad[talking]) - said) < 4
    assert abs(power_db(clean.frames[talking]) - said) < 1
    report = echo.report
    assert report.heard and report.delay_ms == pytest.approx(delay_s * 1000, abs=5)
    assert report.erle_db > 20 and report.linear_erle_db > 10


@pytest.fixture(scope="module")
def whisper_base():
    return whisper.load_model(str(model_store.checkpoint_path("base")), device="cpu")


@pytest.mark.model
def test_a_talker_over_echo_louder_than_them_keeps_their_words(far, talker, whisper_base):
    """Double talk with the speakers 10-15 dB louder than the talker in the mic, 80 ms
    late: offline Whisper (base) reads the talker's sentence from the linear filter's output
    as from the talker alone (measured: WER 0.000 over the echo, 0.000 alone), where the mic
    as heard gives none of it (WER ~1: the speakers' words)."""
    reference = manifest_references()[TALKER]
    at = 12 * SAMPLE_RATE
    mic = room(far, 0.08, gain=1.0)
    said = slice(at, at + len(talker))
    mic[said] += talker * 0.5
    clean, _ = cancel(mic, far, talking_from=at)

    def wer(audio: np.ndarray) -> float:
        text = whisper_base.transcribe(audio, language="en", fp16=False, condition_on_previous_text=False)["text"]
        return word_error_rate(reference, text)

    assert wer(mic[said]) > 0.5
    assert wer(clean.frames[said]) <= 0.1


@pytest.mark.pure
@pytest.mark.parametrize("delay_s", [0.02, 0.2])
def test_the_path_is_found_within_the_speakers_first_second_of_speech(far, delay_s):
    """The mic has listened for half a second of silence, then the speakers begin: the
    path is heard within 0.8 s of audio from their first voiced sample (checked every
    ``PATH_EVERY_S``, two estimates agreeing), so at most their first word or two reach
    the mic uncancelled (the text-level net takes those out). Audio positions, not time:
    fed in the mel actor's 100 ms blocks."""
    far = np.concatenate((np.zeros(SAMPLE_RATE // 2, np.float32), far[:3 * SAMPLE_RATE]))
    mic = room(far, delay_s)
    path, block = EchoPath(), SAMPLE_RATE // 10
    first_voiced = int(np.argmax(np.abs(far) > 0.01))
    for at in range(0, len(far) - block, block):
        estimate = path.push(mic[at:at + block], far[at:at + block])
        if estimate.heard:
            break
    assert estimate.heard and estimate.delay_s == pytest.approx(delay_s, abs=0.005), estimate
    assert (at + block - first_voiced) / SAMPLE_RATE <= 0.8, (at + block - first_voiced) / SAMPLE_RATE


@pytest.mark.pure
def test_unrelated_speech_makes_no_correlation_peak(far, talker):
    lag, sigmas = gcc_phat_lag(talker[:32000:2], far[:32000:2], 3200)
    assert sigmas < 7
    lag, sigmas = gcc_phat_lag(room(far, 0.05)[:32000:2], far[:32000:2], 3200)
    assert sigmas > 10 and lag == pytest.approx(0.05 * 8000, abs=2)


@pytest.mark.pure
def test_ring_clocks_line_the_sources_up_by_their_stamps():
    """Blocks arrive late by their buffering (0-40 ms, never early); the speakers began
    1.5 s after the mic: speakers position = mic position - 1.5 s at the same instant."""
    rng = np.random.default_rng(3)
    mic, speakers = RingClock(), RingClock()
    for clock, began_s in ((mic, 100.0), (speakers, 101.5)):
        for block in range(200):
            items = np.arange(block * 4, block * 4 + 4)
            arrived = began_s + (items[-1] + 1) * FRAME / SAMPLE_RATE + rng.uniform(0, 0.04)
            clock.observe(int(items[0]), np.full(4, int(arrived * 1e9)), FRAME)
    assert far_offset(mic, speakers) == pytest.approx(-1.5 * SAMPLE_RATE, abs=0.002 * SAMPLE_RATE)
    assert far_offset(mic, RingClock()) is None


@pytest.mark.pure
@pytest.mark.parametrize("mic, speakers, cancel, on, problem", [
    ("", "", "auto", True, ""),
    ("", "", "off", False, ""),
    ("a.wav", "b.wav", "auto", False, ""),
    ("a.wav", "b.wav", "on", True, ""),
    ("a.wav", "", "auto", False, ""),
    ("a.wav", "", "on", False, "share no room"),
    ("a.wav", "b.wav!fast", "on", False, "in real time"),
])
def test_where_echo_is_cancelled(mic, speakers, cancel, on, problem):
    config = Config(mic=SourceConfig(replay=mic), speakers=SourceConfig(replay=speakers.split("!")[0],
                                                                          realtime="!fast" not in speakers),
                    echo=EchoConfig(cancel=cancel))
    decision = echo_cancelled(config, ["mic", "speakers"])
    assert decision.on == on and (problem in decision.problem if problem else decision.problem == "")


@pytest.mark.pure
def test_echo_cancelling_asked_for_without_the_speakers_says_why():
    config = Config(echo=EchoConfig(cancel="on"))
    assert "the speakers are not captured" in echo_cancelled(config, ["mic"]).problem
    assert echo_cancelled(Config(), ["mic"]).problem == ""  # auto: nothing was asked
    blocks = echo_cancelled(Config(block_samples=100), ["mic", "speakers"])
    assert not blocks.on and "multiple of 160" in blocks.problem


@pytest.mark.pure
def test_echo_cancelling_without_speexdsp_says_what_to_install(monkeypatch):
    def not_installed():
        raise OSError("libspeexdsp.so.1: cannot open shared object file")

    assert echo_cancelled(Config(), ["mic", "speakers"]).on
    monkeypatch.setattr(linear_echo, "_speexdsp", not_installed)
    decision = echo_cancelled(Config(), ["mic", "speakers"])
    assert not decision.on and "speexdsp library is not installed" in decision.problem
    assert "apt install libspeexdsp1" in decision.problem


# --- live: PulseAudio's loopback from the speakers into the fake microphone ---------------

SPEAKERS_FILES = FAR_FILES[:2]
TALKER_AFTER_S = 9.0


async def listen_with_bleed(prefix: str, folder, cancel: str) -> tuple[list[tuple[float, float]], EchoState | None, float]:
    """Real capture and the mel actor's VAD while the speakers play ~16 s of read speech and
    a talker joins after TALKER_AFTER_S: the mic's speech spans (s from the speakers' start,
    each from its first voiced sample),
    the last EchoState, and the canceller's CPU seconds per second of audio."""
    speakers = folder / "speakers.wav"
    soundfile.write(speakers, np.concatenate([read_audio(REAL_AUDIO / name) for name in SPEAKERS_FILES]), SAMPLE_RATE)
    config = Config(mic=SourceConfig(device="fakemic"), speakers=SourceConfig(device="sysout.monitor"),
                    echo=EchoConfig(cancel=cancel))
    plan = listen_plan(config, prefix)
    async with Supervisor(plan.rings, plan.actors) as supervisor:
        events = supervisor.subscribe()
        mic = supervisor.rings[pcm_ring_name(prefix, "mic")]
        while supervisor.pid("mel") is None or not mic.published:
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)
        began = mic.published * mic.spec.item_len
        await headless.talk_over(speakers, REAL_AUDIO / TALKER, TALKER_AFTER_S)
        ended = mic.published * mic.spec.item_len
        await asyncio.sleep(3.0)  # the VAD's hangover, a Stats period
    spans, state, cpu_s, opened = [], None, 0.0, None
    while not events.empty():
        message = events.get_nowait()
        if isinstance(message, SpeechStart) and message.source == "mic":
            opened = message.start
        elif isinstance(message, SpeechEnd) and message.source == "mic" and message.heard:
            # From the first voiced sample: an utterance begins vad.lead_ms before it, which
            # would put the talker's first 0.3 s before the talker spoke.
            onset = config.vad.onset(message.start)
            spans.append(((onset - began) / SAMPLE_RATE, (message.end - began) / SAMPLE_RATE))
        elif isinstance(message, EchoState):
            state = message
        elif isinstance(message, Stats) and "mic_echo_cpu_s" in message.counters:
            cpu_s = message.counters["mic_echo_cpu_s"]
    assert opened is not None
    return spans, state, cpu_s / ((ended - began) / SAMPLE_RATE)


def speech_within(spans: list[tuple[float, float]], start: float, end: float) -> float:
    return sum(max(0.0, min(b, end) - max(a, start)) for a, b in spans)


@pytest.mark.service
def test_through_pulseaudio_the_mic_stops_hearing_the_speakers_and_still_hears_its_talker(pulse, ring_prefix, tmp_path):
    """A loopback 20 ms late at half volume: once the path is found (in its first 2.5 s of
    audio) the VAD hears no mic speech while only the speakers play, and the talker's
    ~9.7 s over them and after; the return loss and the cost are measured (bench echo
    reports their figures: how far a canceller got is not asserted here)."""
    with headless.bleed(latency_ms=20, volume=0.5):
        spans, state, cpu = asyncio.run(listen_with_bleed(ring_prefix, tmp_path, "auto"))
    assert speech_within(spans, 4.0, TALKER_AFTER_S) < 0.3, spans
    assert speech_within(spans, TALKER_AFTER_S, TALKER_AFTER_S + 9.6) > 7.0, spans
    assert state is not None and state.heard and 0 < state.delay_ms < 300, state
    assert state.erle_db is not None and state.linear_erle_db is not None and cpu > 0, (state, cpu)


@pytest.mark.service
def test_through_pulseaudio_without_cancelling_the_mic_hears_the_speakers(pulse, ring_prefix, tmp_path):
    """The same loopback (200 ms late, full volume) with echo.cancel = off: what the test
    above takes out is there to take (and no EchoState: no canceller runs)."""
    with headless.bleed(latency_ms=200, volume=1.0):
        spans, state, _ = asyncio.run(listen_with_bleed(ring_prefix, tmp_path, "off"))
    assert speech_within(spans, 1.0, TALKER_AFTER_S) > 5.0, spans
    assert state is None
