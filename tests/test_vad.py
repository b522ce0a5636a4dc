"""The segmenter's rules, driven chunk by chunk with given probabilities.

The real model on real speech is tested through the mel actor (test_mel_actor.py); here
the rules that turn probabilities into utterances are checked one by one.
"""

from __future__ import annotations

import pytest

from earwig.audio.vad import CHUNK, Segmenter
from earwig.config import VadConfig
from earwig.messages import SpeechEnd, SpeechPause, SpeechResume, SpeechStart

pytestmark = pytest.mark.pure

SETTINGS = VadConfig(threshold=0.5, min_speech_ms=250, min_silence_ms=500, lead_ms=30, pad_ms=30,
                     max_utterance_s=10.0)
MS = 16


def feed(probabilities, energies=None, settings=SETTINGS):
    segmenter = Segmenter("mic", settings)
    events = []
    for i, p in enumerate(probabilities):
        events += segmenter.push(i * CHUNK, p, 1.0 if energies is None else energies[i])
    return segmenter, events


def chunks(ms: float) -> int:
    return round(ms * MS / CHUNK)


def test_speech_shorter_than_min_speech_is_ignored():
    _, events = feed([0.0] * 10 + [0.9] * chunks(200) + [0.0] * 40)
    assert events == []


def test_an_utterance_starts_padded_and_ends_after_the_hangover():
    speech = chunks(1000)
    start, end = 10 * CHUNK - 30 * MS, (10 + speech) * CHUNK + 30 * MS
    segmenter, events = feed([0.0] * 10 + [0.9] * speech + [0.0] * chunks(480))
    assert events == [SpeechStart(source="mic", start=start),
                      SpeechPause(source="mic", start=start, end=end)]
    assert segmenter.active  # 480 ms of silence: still inside the hangover
    _, events = feed([0.0] * 10 + [0.9] * speech + [0.0] * chunks(600))
    assert events[-1] == SpeechEnd(source="mic", start=start, end=end)


def test_a_short_pause_or_an_uncertain_chunk_does_not_end_an_utterance():
    pause = [0.9] * 20 + [0.4] * 20 + [0.9] * 5 + [0.0] * chunks(300) + [0.9] * 20 + [0.0] * 20
    _, events = feed(pause)
    assert [type(e) for e in events] == [SpeechStart, SpeechPause, SpeechResume, SpeechPause, SpeechEnd]
    first_pause, resume, last_pause, end = events[1:]
    assert first_pause.end < resume.at < last_pause.end == end.end  # the last pause became the end


def test_a_long_utterance_is_cut_at_its_quietest_chunk():
    count = chunks(14000)
    energies = [1.0] * count
    quiet = chunks(8000)
    energies[quiet] = 0.01
    energies[chunks(2000)] = 0.0  # quieter, but not in the last seconds before the cut
    _, events = feed([0.9] * count, energies)
    first_end = events[1]
    assert isinstance(first_end, SpeechEnd) and first_end.cut
    assert first_end.end == quiet * CHUNK + CHUNK // 2
    assert events[2] == SpeechStart(source="mic", start=first_end.end)
    assert first_end.end - first_end.start <= 10 * 16000


def test_the_end_of_the_source_closes_the_utterance():
    segmenter, events = feed([0.9] * 30)
    assert [type(e) for e in events] == [SpeechStart]
    (end,) = segmenter.finish(30 * CHUNK)
    assert end.end == 30 * CHUNK and not end.cut
    assert segmenter.finish(30 * CHUNK) == []


def test_while_dictation_holds_it_silence_does_not_end_the_utterance_and_the_key_does():
    segmenter = Segmenter("mic", SETTINGS)
    press = 5 * CHUNK
    events = []
    probabilities = [0.0] * 10 + [0.9] * 30 + [0.0] * chunks(1500) + [0.9] * 30 + [0.0] * 4
    for i, p in enumerate(probabilities):
        if i == 5:
            events += segmenter.hold(press)
        events += segmenter.push(i * CHUNK, p, 1.0)
    assert not any(isinstance(e, SpeechEnd) for e in events)  # 1.5 s of silence, still one utterance
    assert events[0] == SpeechStart(source="mic", start=10 * CHUNK - 30 * MS)
    release = len(probabilities) * CHUNK
    ended, utterances = segmenter.release(release)
    last_speech = (len(probabilities) - 4) * CHUNK
    assert ended == [SpeechEnd(source="mic", start=events[0].start, end=last_speech + 30 * MS)]
    assert utterances == 1 and not segmenter.active
    # Afterwards the VAD's own rule is back: silence ends speech again.
    later = [0.9] * 30 + [0.0] * chunks(600)
    back = [e for i, p in enumerate(later) for e in segmenter.push(release + i * CHUNK, p, 1.0)]
    assert isinstance(back[-1], SpeechEnd)


def test_speech_before_the_key_is_its_own_utterance_and_no_speech_is_zero_utterances():
    segmenter, events = feed([0.9] * 30)
    press = 30 * CHUNK
    held = segmenter.hold(press)
    assert held == [SpeechEnd(source="mic", start=0, end=press), SpeechStart(source="mic", start=press)]
    ended, utterances = segmenter.release(press + 40 * CHUNK)  # still speaking at the release
    assert ended == [SpeechEnd(source="mic", start=press, end=press + 40 * CHUNK)] and utterances == 1
    quiet = Segmenter("mic", SETTINGS)
    quiet.hold(0)
    for i in range(40):
        quiet.push(i * CHUNK, 0.0, 0.0)
    assert quiet.release(40 * CHUNK) == ([], 0)
