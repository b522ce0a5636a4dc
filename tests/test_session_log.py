"""The session log (every Final on disk before it is shown) and `earwig export`."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import msgspec
import numpy as np
import pytest
import soundfile

from earwig.audio.files import read_audio
from earwig.config import SAMPLE_RATE, Config, SourceConfig
from earwig.messages import Final, Word
from earwig.playback import kept_samples
from earwig.session.audio import UNTIL_END, SessionAudio
from earwig.session.log import SessionLog, read, sessions_dir
from earwig.shm import Ring, RingSpec
from earwig.supervisor.plan import capture_plan
from earwig.supervisor.supervisor import Supervisor
from live_pipeline import keeping_everything

pytestmark = pytest.mark.pipeline
#: Samples in a block of libFLAC's, as libsndfile writes 16 kHz audio.
ENCODER_BLOCK = 4096

FINALS = [Final(source="mic", start=16000, end=48000, text="Hello there.", language="en",
                words=[Word("Hello", 16000, 30000, 0.9), Word("there.", 30000, 48000, 0.8)]),
          Final(source="speakers", start=8000, end=40000, text="Good morning.", language="en"),
          Final(source="mic", start=96000, end=150000, text="How are you?", language="en"),
          # The speakers heard in the mic: logged with its mark, never exported.
          Final(source="mic", start=12000, end=44000, text="Good morning.", language="en", echo=True)]


def _logged() -> Path:
    log = SessionLog()
    for final in FINALS:
        assert log.append(final, "base")
    log.close()
    return log.path


def test_every_final_is_on_disk_private_and_read_back_even_after_a_cut_last_line():
    path = _logged()
    assert path.parent == sessions_dir() and oct(path.stat().st_mode & 0o777) == "0o600"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["text"] for r in records] == [f.text for f in FINALS] and records[0]["model"] == "base"
    assert records[0]["words"][0] == {"word": "Hello", "start": 16000, "end": 30000, "probability": 0.9}
    assert [r.get("echo", False) for r in records] == [False, False, False, True]
    with path.open("a") as file:
        file.write('{"source": "mic", "start": 2000')  # the power went mid-write
    assert [(f.text, f.echo) for f in read(path)] == [(f.text, f.echo) for f in FINALS]


def test_a_data_dir_that_cannot_be_written_is_reported_and_loses_nothing_shown(tmp_path):
    if os.geteuid() == 0:
        folder = Path("/proc/earwig-cannot-be-made")  # root writes anywhere else
    else:
        folder = tmp_path / "read-only"
        folder.mkdir(mode=0o500)
    log = SessionLog(folder)
    assert not log.append(FINALS[0], "base")
    assert log.problem is not None and "cannot write the session log" in log.problem


@pytest.mark.parametrize("form", ["txt", "srt", "vtt", "json"])
def test_export_writes_both_sources_interleaved_by_time_or_one(form, tmp_path):
    _logged()
    run = subprocess.run([sys.executable, "-m", "earwig.cli", "export", "--format", form], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    order = [run.stdout.index(text) for text in ("Good morning.", "Hello there.", "How are you?")]
    assert order == sorted(order)  # by start time, across sources
    if form == "srt":
        assert run.stdout.startswith("1\n00:00:00,500 --> 00:00:02,500\nSpeakers: Good morning.\n")
    elif form == "vtt":
        assert run.stdout.startswith("WEBVTT\n\n00:00:00.500 --> 00:00:02.500\n<v Speakers>Good morning.\n")
    elif form == "json":
        assert json.loads(run.stdout)[1]["words"][0] == {"word": "Hello", "start": 1.0, "end": 1.875}
    only = subprocess.run([sys.executable, "-m", "earwig.cli", "export", "--format", form, "--source", "mic",
                           "-o", str(tmp_path / "out")], capture_output=True, text=True, timeout=60)
    assert only.returncode == 0 and "Good morning." not in (tmp_path / "out").read_text()  # nor its echo
    assert oct((tmp_path / "out").stat().st_mode & 0o777) == "0o600"


def test_export_of_a_session_that_does_not_exist_says_so():
    run = subprocess.run([sys.executable, "-m", "earwig.cli", "export", "nope"], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 2 and "no session 'nope'" in run.stderr and "--list" in run.stderr


def test_kept_audio_lines_up_with_the_logs_sample_positions(ring_prefix, speech, long_speech):
    """Both sources replayed through real capture actors; with keep_audio each one's FLAC
    holds its file sample for sample, so ``flac[start:end]`` of a Final is its audio."""
    config = Config(mic=SourceConfig(replay=str(long_speech)), speakers=SourceConfig(replay=str(speech["b"])),
                    keep_audio=True)
    plan = capture_plan(config, ring_prefix)
    log, keeper = keeping_everything(plan, ring_prefix)

    async def run() -> None:
        async with Supervisor(plan.rings, plan.actors, keeper=keeper) as supervisor:
            while not all(supervisor.finished(a.name) for a in plan.actors):
                await asyncio.sleep(0.1)
    asyncio.run(run())
    for source, played in (("mic", long_speech), ("speakers", speech["b"])):
        kept = log.with_name(f"{log.stem}-{source}.flac")
        assert oct(kept.stat().st_mode & 0o777) == "0o600"
        audio, rate = soundfile.read(kept, dtype="float32")
        said = read_audio(played)
        assert rate == 16000 and len(said) <= len(audio) < len(said) + 160  # the last item is padded
        assert np.abs(audio[:len(said)] - said).max() < 1e-4  # 16-bit FLAC: within a step


def test_a_revision_is_appended_and_read_in_the_place_of_its_line_and_export_uses_it(tmp_path):
    path = _logged()
    before = path.read_text()
    log = SessionLog(path=path)
    revised = msgspec.structs.replace(FINALS[0], text="Hello, their.", revised=True)
    assert log.append(revised, "small")
    log.close()
    assert path.read_text().startswith(before)  # appended: nothing written over
    last = json.loads(path.read_text().splitlines()[-1])
    assert last["revised"] is True and last["model"] == "small"
    assert [f.text for f in read(path)] == ["Hello, their.", "Good morning.", "How are you?", "Good morning."]
    out = tmp_path / "out.txt"
    subprocess.run([sys.executable, "-m", "earwig.cli", "export", path.stem, "-o", str(out)], check=True, timeout=60)
    assert "Hello, their." in out.read_text() and "Hello there." not in out.read_text()


def test_audio_a_killed_session_meant_to_delete_is_deleted_by_the_next_session(tmp_path):
    """A marker says the audio goes at the session's end; the session was killed first (its
    process is gone): the next session deletes it. A live session's, and kept audio, stay."""
    folder = sessions_dir()
    folder.mkdir(parents=True, exist_ok=True)
    gone = subprocess.Popen(["true"])
    gone.wait()
    killed, running, kept = (f"20261203-070000-{gone.pid}", f"20261203-070100-{os.getpid()}",
                             f"20261203-070200-{gone.pid + 1}")
    for session in (killed, running, kept):
        for source in ("mic", "speakers"):
            (folder / f"{session}-{source}.flac").write_bytes(b"fLaC")
    for session in (killed, running):
        (folder / f"{session}{UNTIL_END}").touch()
    audio = SessionAudio(folder / f"20261203-080000-{os.getpid()}.jsonl", {}, kept_after=False)
    audio.start({})
    assert (folder / f"20261203-080000-{os.getpid()}{UNTIL_END}").exists()  # its own, while it runs
    assert sorted(p.name for p in folder.glob("*.flac")) == sorted(
        f"{session}-{source}.flac" for session in (running, kept) for source in ("mic", "speakers"))
    assert not (folder / f"{killed}{UNTIL_END}").exists() and (folder / f"{running}{UNTIL_END}").exists()
    audio.close()
    assert not (folder / f"20261203-080000-{os.getpid()}{UNTIL_END}").exists()


def test_a_line_can_be_read_back_from_the_audio_file_while_the_session_still_writes_it(ring_prefix, tmp_path):
    """The monitor plays, and retries, a line the ring no longer holds from the file the
    session is still writing: each keep hands its audio to the file, all but the samples
    the FLAC encoder holds for its next block (4096 at 16 kHz)."""
    ring = Ring.create(RingSpec(f"{ring_prefix}pcm-mic", 1024, 160))
    audio = SessionAudio(tmp_path / "20261206-090000-1.jsonl", {"mic": ring.spec.name})
    try:
        audio.start({ring.spec.name: ring})
        said = np.sin(np.arange(3 * SAMPLE_RATE) / 7).astype(np.float32) * 0.5
        ring.writer().write(said.reshape(-1, 160))
        audio.keep()
        encoded = len(said) // ENCODER_BLOCK * ENCODER_BLOCK - 160  # 2.81 s: whole blocks, less the 10 ms a read could not reach to the last sample
        line = kept_samples(audio.paths["mic"], SAMPLE_RATE, encoded)
        assert np.abs(line - said[SAMPLE_RATE:encoded]).max() < 1e-4
    finally:
        audio.close()
        ring.close()
        ring.unlink()


def test_a_disk_that_fills_stops_the_kept_audio_with_one_problem_and_no_traceback(ring_prefix, tmp_path, capfd):
    """A file may not grow past 64 KB here (RLIMIT_FSIZE: a full disk, as the writes see
    it). The audio stops being kept, the problem is said once and names the folder; closing
    raises nothing. A Python file object under libsndfile printed "Exception ignored" for
    every write it failed."""
    ring = Ring.create(RingSpec(f"{ring_prefix}pcm-mic", 2048, 160))
    audio = SessionAudio(tmp_path / "20261206-090000-1.jsonl", {"mic": ring.spec.name})
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    try:
        audio.start({ring.spec.name: ring})
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, hard))
        noise = np.random.default_rng(3).normal(0, 0.3, 10 * SAMPLE_RATE).astype(np.float32)
        for second in range(10):
            ring.writer().write(noise[second * SAMPLE_RATE:(second + 1) * SAMPLE_RATE].reshape(-1, 160))
            audio.keep()
        audio.close()
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        ring.close()
        ring.unlink()
    assert audio.problem is not None and audio.problem.startswith(f"cannot keep the session's audio in {tmp_path}")
    assert "Traceback" not in capfd.readouterr().err
