"""The earwig command as a user runs it: bad input, signals, and what is left in /dev/shm."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import tempfile
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import psutil
import pytest
import soundfile
import soxr

from earwig.actors.capture_devices import Device, echo_between
from earwig.audio.files import read_audio
from earwig.shm import segments
from installed import require
from processes import actor_processes

EARWIG = [sys.executable, "-m", "earwig"]


def run(args, env=None, timeout=60):
    return subprocess.run(EARWIG + args, capture_output=True, text=True, timeout=timeout,
                          env=env or os.environ.copy())


def assert_one_clear_line(result, *needles):
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("earwig: ")
    assert "Traceback" not in result.stderr + result.stdout
    for needle in needles:
        assert needle in lines[0]


@pytest.mark.service
def test_devices_lists_the_fake_microphone_and_the_speaker_loopback(pulse):
    result = run(["devices"], env=pulse)
    assert result.returncode == 0, result.stderr
    mics, loopbacks = result.stdout.split("Loopback")
    assert "fakemic" in mics and "FakeMic" in mics
    assert "sysout.monitor" in loopbacks
    assert "Compute device: CPU" in result.stdout
    assert "Echo: the microphone (fakemic) and the speakers (sysout.monitor) are this machine's" in result.stdout


@pytest.mark.pure
def test_devices_says_which_pairs_can_hear_each_other():
    mic, speakers = Device("alsa_input.pci", "Mic", 48000, 1), Device("alsa_output.pci.monitor", "Out", 48000, 2)
    assert "are this machine's: without headphones the mic hears the speakers" in echo_between(mic, speakers)
    tunnel = Device("tunnel.desk.local.alsa_output.monitor", "Remote", 48000, 2)
    assert "another machine (a network tunnel)" in echo_between(mic, tunnel)
    headset = (Device("bluez_input.00_11", "Headset", 16000, 1), Device("bluez_output.00_11.monitor", "Headset", 48000, 2))
    assert "one Bluetooth headset's" in echo_between(*headset)


@pytest.mark.pipeline
def test_echo_cancelling_asked_for_with_no_speakers_is_one_warning_and_the_mic_runs(speech):
    result = run(["meter", "--replay-mic", str(speech["a"]), "--no-speakers", "--echo-cancel", "on"])
    assert result.returncode == 0, result.stderr
    warning, = result.stderr.strip().splitlines()
    assert warning == ("earwig: echo.cancel = on, but the speakers are not captured: echo is not cancelled "
                       "(it needs both sources)")
    assert [line for line in result.stdout.splitlines() if "mic speech" in " ".join(line.split())]


@pytest.mark.service
def test_unknown_device_name(pulse):
    result = run(["meter", "--mic", "no-such-mic", "--no-speakers"], env=pulse)
    assert_one_clear_line(result, "unknown mic device 'no-such-mic'", "earwig devices")


@pytest.mark.pipeline
def test_no_audio_server_at_all(tmp_path):
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "PULSE_SERVER": f"unix:{runtime}/none"}
    result = run(["meter"], env=env)
    assert_one_clear_line(result, "no audio server", "PulseAudio")


@pytest.mark.pipeline
def test_a_replay_runs_on_when_the_other_source_has_no_audio_server(speech, tmp_path):
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "PULSE_SERVER": f"unix:{runtime}/none"}
    result = run(["meter", "--replay-mic", str(speech["a"])], env=env)
    assert result.returncode == 0, result.stderr
    warning, = result.stderr.strip().splitlines()  # one line, then the mic runs
    assert warning.startswith("earwig: speakers left out: no audio server") and "PulseAudio" in warning
    assert [line for line in result.stdout.splitlines() if "mic speech" in " ".join(line.split())]


@pytest.mark.pipeline
def test_missing_audio_file():
    result = run(["meter", "--replay-mic", "/nonexistent/speech.wav", "--no-speakers"])
    assert_one_clear_line(result, "/nonexistent/speech.wav not found")


@pytest.mark.pipeline
@pytest.mark.parametrize("argv", [["monitor", "--vad-threshold", "3"], ["dictate", "--models-language", "klingon"],
                                  ["transcribe", "/nonexistent/speech.wav"],
                                  ["monitor", "--replay-speakers", "/nonexistent/speech.wav"]])
def test_a_bad_setting_or_file_is_said_before_pytorch_is_imported(argv):
    """The line comes at once: the command reads its settings and files before what runs
    a session (PyTorch and whisper: 2 s of CPU)."""
    checked = [sys.executable, "-c", "import sys; from earwig import cli; code = cli.main(sys.argv[1:]); "
               "print('imported:', sorted({'torch', 'whisper'} & set(sys.modules))); sys.exit(code)", *argv]
    result = subprocess.run(checked, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.startswith("earwig: "), result.stderr
    assert "imported: []" in result.stdout, result.stdout


@pytest.mark.pipeline
def test_corrupt_audio_file(tmp_path):
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x10\x00\x00WAVEfmt " + os.urandom(200))
    result = run(["meter", "--replay-mic", str(corrupt), "--no-speakers"])
    assert_one_clear_line(result, "cannot decode audio file", str(corrupt))


@pytest.fixture
def as_a_user(tmp_path):
    """Runs earwig as a user without root's right to read every file (``nobody`` where the
    tests run as root), in a folder that user can reach, with XDG folders of its own there;
    gives the folder and the run."""
    user = [] if os.getuid() else ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    if user and shutil.which("setpriv") is None:
        pytest.skip("setpriv is not installed (util-linux)")
    folder = Path(tempfile.mkdtemp(prefix="earwig-user-"))
    folder.chmod(0o777)
    env = {**os.environ, **{name: str(folder / name.lower()) for name in
                            ("HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME",
                             "XDG_RUNTIME_DIR")}}

    def run_as_user(args: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run([*user, *EARWIG, *args], capture_output=True, text=True, timeout=120, env=env)

    yield folder, run_as_user
    for inside in folder.rglob("*"):
        inside.chmod(0o700)
    shutil.rmtree(folder)


@pytest.mark.pipeline
def test_an_audio_file_the_user_may_not_read_is_one_line(speech, as_a_user):
    """``transcribe``, which reads in its own process (a replay is read by the capture actor
    through the same ``audio_stream``; ``nobody`` cannot start actors here: the interpreter
    under /root is not theirs to run as a fork server)."""
    folder, run_as_user = as_a_user
    locked = folder / "locked.wav"
    shutil.copy(speech["a"], locked)
    locked.chmod(0)
    assert_one_clear_line(run_as_user(["transcribe", str(locked)]),
                          f"audio file {locked} cannot be read: permission denied")


@pytest.mark.pipeline
def test_a_config_folder_the_user_may_not_enter_is_one_line(speech, as_a_user):
    folder, run_as_user = as_a_user
    config = folder / "xdg_config_home" / "earwig"
    config.mkdir(parents=True)
    (config / "config.toml").write_text("[models]\nfinal = 'base'\n")
    config.chmod(0)
    assert_one_clear_line(run_as_user(["transcribe", str(speech["a"])]),
                          f"cannot read config {config / 'config.toml'}: Permission denied")


@pytest.mark.pipeline
def test_any_sample_rate_and_channel_count_from_8_khz_up_is_heard(speech, tmp_path):
    surround = tmp_path / "surround.flac"  # 44.1 kHz, six channels: the voice in two of them
    voice = soxr.resample(read_audio(speech["a"]), 16000, 44100)
    channels = np.zeros((len(voice), 6), np.float32)
    channels[:, 0] = channels[:, 1] = voice
    soundfile.write(surround, channels, 44100)
    result = run(["meter", "--replay-mic", str(surround), "--no-speakers"])
    assert result.returncode == 0, result.stderr
    assert sum(" speech " in line for line in result.stdout.splitlines()) == 1


@pytest.mark.pipeline
def test_a_sample_rate_too_low_for_speech(speech, tmp_path):
    low = tmp_path / "low.wav"
    soundfile.write(low, read_audio(speech["a"])[::4], 4000)
    result = run(["meter", "--replay-mic", str(low), "--no-speakers"])
    assert_one_clear_line(result, f"audio file {low} is sampled at 4000 Hz, too low", "8000 Hz or more")


@pytest.mark.pipeline
@pytest.mark.parametrize("kind", ["flac", "wav"])
def test_a_file_cut_short_is_transcribed_as_far_as_it_goes_with_a_warning(speech, tmp_path, kind):
    whole = tmp_path / f"whole.{kind}"
    soundfile.write(whole, read_audio(speech["a"]), 16000)
    cut = tmp_path / f"cut.{kind}"
    cut.write_bytes(whole.read_bytes()[:int(whole.stat().st_size * 0.6)])  # its header promises all of it
    result = run(["transcribe", str(cut)], timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"earwig: audio file {cut} is cut short or damaged: 2." in result.stderr, result.stderr
    assert "of 4.5 s could be read; the rest is missing" in result.stderr
    said = result.stdout.split("] ", 1)[1]
    assert said.lower().startswith("the quick brown fox"), said  # what was there was transcribed


@pytest.mark.pipeline
@pytest.mark.parametrize("text, needles", [
    ('[mic]\ndevise = "fakemic"\n', ("devise", "$.mic")),  # a key that does not exist
    ("[vad]\nmax_utterance_s = 40\n", ("vad.max_utterance_s", "between 10 and 29")),  # out of range
    # A ring that holds no utterance: accepted before, and no speech was ever found.
    ("ring_seconds = 0\n", ("ring_seconds must be between vad.max_utterance_s (25) and 3600",)),
    ("block_samples = -160\n", ("block_samples must be between 1 and 16000",)),
])
def test_a_bad_config_names_the_key(tmp_path, text, needles):
    config = tmp_path / "config.toml"
    config.write_text(text)
    result = run(["meter", "--config", str(config)])
    assert_one_clear_line(result, *needles)


@pytest.mark.pipeline
@pytest.mark.parametrize("variable, command", [
    ("XDG_STATE_HOME", ["profile", "--seconds", "2", "--no-speakers"]),
    ("XDG_STATE_HOME", ["dictate"]),
    ("XDG_RUNTIME_DIR", ["dictate"]),
    ("XDG_RUNTIME_DIR", ["ctl", "status"]),
])
def test_a_folder_earwig_cannot_use_is_one_line_naming_its_variable(speech, tmp_path, variable, command):
    not_a_folder = tmp_path / "a-file"
    not_a_folder.touch()
    replay = ["--replay-mic", str(speech["a"])] if command[0] != "ctl" else []
    out = ["--out", str(tmp_path / "profiled")] if command[0] == "profile" else []
    env = {**os.environ, variable: str(not_a_folder), "DISPLAY": ""}
    result = run([*command, *replay, *out], env=env, timeout=120)
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert last.startswith(f"earwig: cannot use {not_a_folder}/earwig ({variable}): Not a directory"), last
    assert not (tmp_path / "profiled").exists()  # a run that never started leaves no empty folder


@pytest.mark.pipeline
@pytest.mark.parametrize("args, needles", [
    (["meter", "--seconds", "-5"], ("--seconds: '-5' is not a number of seconds above 0", "`earwig meter --help`")),
    (["meter", "--seconds", "nan"], ("'nan' is not a number of seconds above 0",)),
    (["export", "--format", "doc"], ("invalid choice: 'doc'", "`earwig export --help`")),
    (["transcribe", "{tmp}"], ("is a folder, not an audio file", "{tmp}/*.wav")),
    (["transcribe", "{tmp}/video.mp4"], ("video.mp4 has no audio in it (no audio stream)",)),
])
def test_a_wrong_argument_is_one_line_naming_it(tmp_path, args, needles):
    if "{tmp}/video.mp4" in args:
        require("ffmpeg")
        subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=duration=1:size=64x64:rate=5",
                        "-c:v", "mpeg4", str(tmp_path / "video.mp4")], check=True)
    result = run([a.replace("{tmp}", str(tmp_path)) for a in args], timeout=120)
    assert_one_clear_line(result, *(n.replace("{tmp}", str(tmp_path)) for n in needles))


@pytest.mark.pipeline
def test_version():
    result = run(["--version"])
    assert result.returncode == 0 and result.stdout.startswith("earwig 0."), result


@pytest.mark.pipeline
def test_shared_memory_that_cannot_hold_a_ring_is_one_line_and_leaves_no_segment(speech):
    """No file may grow past 256 KB (RLIMIT_FSIZE), segments in /dev/shm included: as a full
    /dev/shm does, the first ring fails to be sized."""
    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, 256 * 1024))
    process = subprocess.run([*EARWIG, "meter", "--replay-mic", str(speech["a"]), "--no-speakers"],
                             capture_output=True, text=True, timeout=60, preexec_fn=limited)
    assert_one_clear_line(process, "cannot make the shared-memory ring", "free space in /dev/shm")
    name = process.stderr.split("shared-memory ring ")[1].split()[0]
    assert segments.existing(name.rsplit("-", 2)[0] + "-") == []


@pytest.mark.pipeline
def test_a_config_that_cannot_be_read_is_one_line(tmp_path):
    result = run(["meter", "--config", str(tmp_path)])
    assert_one_clear_line(result, f"cannot read config {tmp_path}: Is a directory")


@pytest.mark.pipeline
def test_a_replay_plays_to_its_end_and_exits_cleanly(speech):
    result = run(["meter", "--replay-mic", str(speech["a"]), "--no-speakers"])
    assert result.returncode == 0, result.stderr
    assert " dB" in result.stdout
    # The mel actor's VAD found the sentence; its line comes before the run ends.
    utterances = [line.split() for line in result.stdout.splitlines() if " speech " in line]
    assert len(utterances) == 1
    source, _, start, _, end, unit = utterances[0]
    assert source == "mic" and unit == "s" and 0.0 <= float(start) < 0.5 and float(end) > 3.0


@pytest.mark.pipeline
@pytest.mark.parametrize("flags, needles", [
    (["--vad-threshold", "3"], ("--vad-threshold 3", "between 0.15 and 1")),
    (["--vad-min-silence-ms", "half"], ("--vad-min-silence-ms half", "Expected `int`", "vad.min_silence_ms")),
    (["--device", "cuda:99"], ("device 'cuda:99'", "CUDA device")),  # none here; one or few on a GPU box
    (["--device", "tpu:x"], ("'tpu:x' is not a PyTorch device",)),
    (["--ring-seconds", "-1"], ("--ring-seconds -1", "ring_seconds must be between")),
    (["--block-samples", "0"], ("--block-samples 0", "block_samples must be between 1 and 16000")),
])
def test_bad_pipeline_flags(flags, needles, speech):
    result = run(["meter", "--replay-mic", str(speech["a"]), "--no-speakers", *flags])
    assert_one_clear_line(result, *needles)


@pytest.mark.pipeline
@pytest.mark.parametrize("command", ["monitor", "dictate"])
@pytest.mark.parametrize("flag, model, needles", [
    ("--models-preview", "empty-folder", ("empty-folder has no model.bin", "CTranslate2")),
    ("--models-final", "text.pt", ("text.pt is not a Whisper checkpoint",)),
    ("--models-final", "random.pt", ("random.pt is not a Whisper checkpoint",)),
    ("--models-retry", "text.pt", ("models.retry: ", "text.pt is not a Whisper checkpoint")),
])
def test_a_model_that_is_no_model_is_one_line_before_anything_starts(tmp_path, command, flag, model, needles):
    """The monitor and dictation check both models' files as transcribe does, before a
    screen, a ring or an actor (dictation first says that there is no X display: none here)."""
    (tmp_path / "empty-folder").mkdir()
    (tmp_path / "text.pt").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (tmp_path / "random.pt").write_bytes(np.random.default_rng(0).bytes(4096))
    result = run([command, flag, str(tmp_path / model)], env={**os.environ, "DISPLAY": ""})
    assert result.returncode == 2 and "Traceback" not in result.stderr + result.stdout, result
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("earwig: ") and all(needle in last for needle in needles), result.stderr
    assert len(result.stderr.strip().splitlines()) == (1 if command == "monitor" else 2), result.stderr


def start_meter(args):
    process = subprocess.Popen(EARWIG + ["meter"] + args, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    prefix = f"{segments.PREFIX}{process.pid}-"
    deadline = time.monotonic() + 60
    while not segments.existing(prefix) or not actor_processes(process.pid):
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, "meter did not start its rings and actors"
        time.sleep(0.05)
    time.sleep(1.0)  # let the actors get going
    return process, prefix


@pytest.mark.pipeline
def test_a_closed_terminal_ends_the_run_with_nothing_left_behind(long_speech):
    """SIGHUP to the command alone (SIGINT and SIGTERM, to its process group, are
    test_signals.py's): the supervisor ends its actors, which ignore it."""
    process, prefix = start_meter(["--replay-mic", str(long_speech), "--replay-speakers", str(long_speech)])
    actors = actor_processes(process.pid)
    assert len(actors) == 3  # two captures and the mel actor
    process.send_signal(signal.SIGHUP)
    assert process.wait(60) == 0, process.stderr.read()
    assert segments.existing(prefix) == []
    assert psutil.wait_procs(actors, timeout=60)[1] == []


@pytest.mark.pipeline
def test_kill_9_of_the_supervisor_leaves_no_orphan_and_the_next_start_cleans_up(long_speech):
    process, prefix = start_meter(["--replay-mic", str(long_speech), "--no-speakers"])
    actors = actor_processes(process.pid)
    assert actors
    process.kill()
    process.wait(60)
    gone, alive = psutil.wait_procs(actors, timeout=60)
    assert alive == [], "actors must exit when their supervisor dies"
    # Its segments stay until an earwig starts, any earwig on the machine (a test beside this
    # one may be first): whichever it is, the next start must have removed them.
    assert run(["meter", "--replay-mic", str(long_speech), "--no-speakers", "--seconds", "0.5"]).returncode == 0
    assert segments.existing(prefix) == []


@pytest.mark.pure
def test_a_long_files_progress_goes_to_stderr_every_ten_seconds_and_a_short_ones_never(monkeypatch, capsys):
    """`earwig transcribe` of a file over five minutes says how far it is, on stderr (its
    lines go to stdout): on a terminal in place, else a line each time; a short file is
    quiet. The clock is the test's: each call is a step of it."""
    from earwig import cli

    now = [1000.0]
    monkeypatch.setattr(cli, "time", SimpleNamespace(monotonic=lambda: now[0]))
    for interactive in (False, True):
        progress = cli._Progress(interactive)
        for step in range(31):  # 30 s of the clock, a call each second
            progress("talk.flac", done_s=60.0 * step, total_s=3600.0)
            progress("short.flac", done_s=1.0 * step, total_s=299.0)
            now[0] += 1.0
        said = capsys.readouterr()
        assert said.out == ""
        if interactive:
            assert said.err.count("\r\033[K") == 3 and "\n" not in said.err, said.err
        else:
            assert said.err.splitlines() == [f"earwig: talk.flac: {done} of 60:00.00 transcribed ({share}%)"
                                             for done, share in (("10:00.00", 17), ("20:00.00", 33), ("30:00.00", 50))]
        assert "short.flac" not in said.err
