"""Finding a line in earlier sessions (`earwig search`) and hearing it again (`earwig play`):
the search over session logs line by line, its bad input, and a real session transcribed
by the pipeline, searched, and its line played through PulseAudio and recorded back."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import soundfile

from earwig import cli
from earwig.config import SAMPLE_RATE, Config, SourceConfig
from earwig.messages import Final, SourceEnded, SpeechEnd
from earwig.profiling.harness import headless
from earwig.session.log import SessionLog, audio_path, read
from earwig.session_search import search, words_of
from earwig.supervisor.plan import transcription_plan
from earwig.supervisor.supervisor import Supervisor
from live_pipeline import keeping_everything
from test_capture_pulse import correlation_in_pieces


def _final(text: str, source: str = "mic", start: int = 16000, echo: bool = False) -> Final:
    return Final(source=source, start=start, end=start + 32000, text=text, language="en", echo=echo)


def _session(started: datetime, *finals: Final) -> SessionLog:
    log = SessionLog(started=started)
    for final in finals:
        assert log.append(final, "base")
    log.close()
    return log


@pytest.mark.pure
def test_a_line_matches_when_it_says_every_word_in_any_order_case_punctuation_and_accents_aside():
    assert words_of("Don't  forget, the CAFÉ!") == ["dont", "forget", "the", "cafe"]
    earlier = _session(datetime(2026, 11, 30, 9, 0), _final("Don't forget the café order."),
                       _final("The café is closed.", "speakers", 80000),
                       _final("Forget the cafe.", echo=True))  # the speakers in the mic: not a line
    later = _session(datetime(2026, 12, 1, 9, 0), _final("Order at the cafe, and don't forget."))
    logs = [earlier.path, later.path]
    hits = search(logs, "cafe dont forget")
    assert [(hit.session, hit.final.text) for hit in hits] == [
        (earlier.path.stem, "Don't forget the café order."), (later.path.stem, "Order at the cafe, and don't forget.")]
    assert [hit.final.source for hit in search(logs, "closed")] == ["speakers"]
    assert search(logs, "cafe forget dog") == []
    assert hits[0].play_command() == f"earwig play {earlier.path.stem} 1.00 --source mic"


@pytest.mark.pure
def test_since_keeps_the_lines_written_from_then_on():
    """``wall`` is when each line was written: the sessions here are written now, so a date
    tomorrow finds nothing and one an hour ago finds them."""
    log = _session(datetime(2026, 11, 30, 9, 0), _final("Water the plants."))
    assert len(search([log.path], "plants", datetime.now() - timedelta(hours=1))) == 1
    assert search([log.path], "plants", datetime.now() + timedelta(days=1)) == []


@pytest.mark.pure
def test_search_and_play_bad_input_is_one_line_each(capsys):
    def run(*argv: str) -> tuple[int, str]:
        code = cli.main(list(argv))
        return code, capsys.readouterr().err.strip()

    code, said = run("search", "plants")
    assert code == 2 and said.startswith("earwig: no session has been logged yet") and len(said.splitlines()) == 1
    log = _session(datetime(2026, 11, 30, 9, 0), _final("Water the plants."))
    for argv, problem in [(("search", "plants", "--since", "last tuesday"), "is not a date"),
                          (("search", "..."), "nothing to search for"),
                          (("play", "nope", "1"), "no session 'nope'"),
                          (("play", log.path.stem, "soon"), "is not a time"),
                          (("play", log.path.stem, "9:00"), "no line of session"),
                          (("play", log.path.stem, "1.5"), "the audio of this line is gone")]:
        code, said = run(*argv)
        assert code == 2 and said.startswith("earwig: ") and problem in said and len(said.splitlines()) == 1, (argv, said)
    code, said = run("search", "rain")
    assert code == 1 and "says 'rain'" in said
    assert run("search", "PLANTS", "--since", "today")[0] == 0


@pytest.mark.pure
def test_a_damaged_line_or_log_costs_only_itself(capsys, tmp_path):
    """A crash or a full disk leaves a blank, cut or foreign line; a folder or a stray file
    can be named like a log. Each is left out with one line saying so; the rest is read."""
    def run(*argv: str) -> tuple[int, str, str]:
        code = cli.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err.strip()

    log = _session(datetime(2026, 11, 30, 9, 0), _final("Water the plants."))
    with log.path.open("ab") as file:
        file.write(b'\n{}\nnull\n\xff\xfe not text\n{"source": "mic", "start": 1}\n')
    _session(datetime(2026, 11, 30, 10, 0), _final("Plants need light.", start=48000))
    (log.path.parent / "20261130-110000-1.jsonl").mkdir()
    code, out, err = run("export", log.path.stem)
    assert code == 0 and "Water the plants." in out
    assert err == f"earwig: {log.path}: 5 damaged line(s) left out (line 2, 3, 4, 5, 6); the rest is read"
    code, out, err = run("search", "plants")
    assert code == 0 and "Water the plants." in out and "Plants need light." in out
    assert len(err.splitlines()) == 2 and "Is a directory: left out of the search" in err, err
    code, _, err = run("export", "20261130-110000-1")
    assert code == 2 and err.startswith("earwig: cannot read the session log") and len(err.splitlines()) == 1
    notes = tmp_path / "notes.jsonl"
    notes.write_text('{"a": 1}\n')
    code, _, err = run("export", str(notes))
    assert code == 2 and "is not an earwig session log" in err and len(err.splitlines()) == 1
    for start in ("nan", "inf", "-1"):
        code, _, err = run("play", log.path.stem, start)
        assert code == 2 and f"START '{start}' is not a time" in err, err


def _transcribe_session(wav, prefix: str) -> Path:
    """The real pipeline (capture, mel + VAD, preview, final) over a replayed file, with the
    session log and the session's audio kept, until every utterance has its Final."""
    config = Config(mic=SourceConfig(replay=str(wav), realtime=False), speakers=SourceConfig(enabled=False),
                    keep_audio=True)
    plan = transcription_plan(config, prefix)
    log, keeper = keeping_everything(plan, prefix)

    async def run() -> None:
        async with Supervisor(plan.rings, plan.actors, keeper=keeper) as supervisor:
            events = supervisor.subscribe()
            ended, ends, finals = False, 0, 0
            while not (ended and supervisor.finished("mel") and finals >= ends):
                try:
                    message = await asyncio.wait_for(events.get(), 1.0)
                except asyncio.TimeoutError:
                    continue  # the mel actor's exit is seen by polling, not by a message
                ended |= isinstance(message, SourceEnded)
                ends += isinstance(message, SpeechEnd)
                finals += isinstance(message, Final)
    asyncio.run(run())
    return log


@pytest.mark.service
def test_a_line_said_in_an_earlier_session_is_found_and_played_back_as_it_was_said(pulse, speech, ring_prefix):
    """Session one transcribes espeak-ng's "...water the plants..." for real; `earwig search
    plants` finds the line and prints the command that plays it; that command plays the
    line's samples through the default output (PulseAudio's speakers), recorded back from
    their monitor: correlation > 0.9 with the kept audio of the line."""
    log = _transcribe_session(speech["b"], ring_prefix)
    line, = [final for final in read(log) if "plants" in final.text.lower()]
    found = subprocess.run([sys.executable, "-m", "earwig", "search", "PLANTS", "morning"],
                           capture_output=True, text=True, timeout=60)
    assert found.returncode == 0, found.stderr
    listed, command = found.stdout.splitlines()
    assert log.stem in listed and line.text in listed
    assert command.strip() == f"earwig play {log.stem} {line.start / SAMPLE_RATE:.2f} --source mic"

    with headless.speakers_recorded() as recorder:
        played = subprocess.run([sys.executable, "-m", "earwig", *command.split()[1:]],
                                capture_output=True, text=True, timeout=60)
    assert played.returncode == 0, played.stderr
    kept, _ = soundfile.read(audio_path(log, "mic"), start=line.start, stop=line.end, dtype="float32")
    assert correlation_in_pieces(recorder.audio(), kept) > 0.9



@pytest.mark.pipeline
def test_play_with_no_audio_output_is_one_clear_line():
    """No audio server to play through (none answers where PULSE_SERVER points, and the
    machine has no sound card): exit 2, the problem and the fix in one line."""
    log = _session(datetime(2026, 11, 30, 9, 0), _final("Water the plants."))
    noise = np.random.default_rng(0).normal(0, 0.1, 64000).astype(np.float32)
    soundfile.write(audio_path(log.path, "mic"), noise, 16000, subtype="PCM_16", format="FLAC")
    played = subprocess.run([sys.executable, "-m", "earwig.cli", "play", log.path.stem, "1"], capture_output=True,
                            text=True, timeout=60, env={**os.environ, "PULSE_SERVER": "unix:/nonexistent"})
    assert played.returncode == 2 and "Traceback" not in played.stderr, played.stderr
    said = played.stderr.strip().splitlines()
    assert len(said) == 1 and said[0].startswith("earwig: cannot play through the default audio output"), said
    assert "connect speakers or headphones" in said[0]
