"""The monitor (tui/) with the real pipeline on replayed espeak-ng speech, and its widgets
driven by hand."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time

from pathlib import Path

import msgspec
import numpy as np
import pytest
import soundfile
from rich.console import Console

from earwig.audio.files import read_audio
from earwig.config import SAMPLE_RATE, Config, SourceConfig
from earwig.messages import Final, Level, ModelState, Partial, PauseSource, SpeechStart
from earwig.profiling.harness import REAL_AUDIO, headless, manifest_references
from earwig.profiling.harness.scoring import bleed
from earwig.shm import segments
from earwig.session import log as session_log
from earwig.tui.app import MonitorApp
from earwig.tui.spectrogram import FRAMES_PER_COLUMN, Spectrogram
from held_replays import HeldReplays
from installed import require
from speech_text import spoken_file, word_error_rate
from test_capture_pulse import correlation_in_pieces
from test_transcription import CLEAR_SAID as SAID
from test_transcription import VOICES


@pytest.fixture(scope="module")
def replays(tmp_path_factory) -> Config:
    require("espeak-ng")
    folder = tmp_path_factory.mktemp("monitor")
    files = {source: spoken_file(folder / f"{source}.wav", said, VOICES[source]).path
             for source, said in SAID.items()}
    return Config(mic=SourceConfig(replay=str(files["mic"])), speakers=SourceConfig(replay=str(files["speakers"])))


async def _until(pilot, condition, timeout: float = 150.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.2)


@pytest.mark.pipeline
def test_real_pipeline_finals_partials_pause_clear_and_eviction(replays, tmp_path):
    """Finals reach their own column, Partials arrive, pausing the mic replay stops its
    audio (and loses none of it), clear empties the screen, the models are evicted when
    idle, and q leaves no ring behind."""
    # Niceness 0: lowering it would lower this test process (and every later test) for good;
    # the tmux test checks the real command's.
    config = msgspec.structs.replace(replays, models=msgspec.structs.replace(replays.models, idle_evict_s=20.0),
                                     monitor=msgspec.structs.replace(replays.monitor, niceness=0))

    async def run() -> None:
        app = MonitorApp(config)
        async with app.run_test(size=(100, 30)) as pilot:
            shown: list[tuple[float, object]] = []
            hold = HeldReplays(preview=True)
            held_until = [0]  # when the last hold ended (monotonic ns); negative once holding is done
            real_handle = app.handle

            def handle(message) -> None:
                """Every message, noted; until the first Partial the replays hold their place
                while a model loads or the preview is behind (``HeldReplays``, as
                tests/test_transcription.py's); after it, only the user's pause stops them."""
                shown.append((time.monotonic(), message))
                if held_until[0] >= 0 and (held := hold.see(message)) is not None:
                    for source in SAID:
                        app._tell(PauseSource(source=source, paused=held))
                    held_until[0] = time.monotonic_ns()
                if isinstance(message, Partial) and not hold.held and held_until[0] >= 0:
                    held_until[0] = -time.monotonic_ns()  # done holding: from here on, real time
                real_handle(message)

            app.handle = handle
            # The pause falls inside the mic's second sentence, whatever the machine's speed.
            mic_starts = lambda: sum(isinstance(m, SpeechStart) and m.source == "mic" for _, m in shown)  # noqa: E731
            await _until(pilot, lambda: mic_starts() >= 2 and held_until[0] < 0)
            await pilot.press("m")
            assert "paused" in app.levels["mic"].render().plain
            await pilot.pause(3.0)
            await pilot.press("m")
            await _until(pilot, lambda: all(len(app.columns[s].finals) == len(SAID[s]) for s in SAID))
            # When each 50 ms of audio was captured (after the last hold): the paused replay
            # stood still for the pause (its ring took nothing), the other source ran on
            # meanwhile (its audio was captured inside the mic's gap).
            stamps = {source: sorted(stamp for stamp in (app._captured_ns(source, m.end - 1) for _, m in shown
                                                         if isinstance(m, Level) and m.source == source)
                                     if stamp > -held_until[0]) for source in SAID}
            gap = int(np.argmax(np.diff(stamps["mic"])))
            paused_from, paused_to = stamps["mic"][gap], stamps["mic"][gap + 1]
            assert (paused_to - paused_from) / 1e9 > 2.5, (paused_to - paused_from) / 1e9
            assert any(paused_from < stamp < paused_to for stamp in stamps["speakers"])
            for source, other in (("mic", "speakers"), ("speakers", "mic")):
                text = " ".join(f.text for f in app.columns[source].finals)
                assert word_error_rate(" ".join(SAID[source]), text) <= 0.2, text  # nothing lost
                assert word_error_rate(" ".join(SAID[other]), text) >= 0.7, text
            assert any(isinstance(m, Partial) for _, m in shown)
            # The profiling panel's latency table: every Final with text, stage by stage.
            await pilot.press("p")
            assert len(app.latencies.finals) == sum(len(said) for said in SAID.values())
            console = Console(record=True, width=120)
            console.print(app.latencies.table())
            rows = {line.split("  ")[0].strip(): line.split()[-4:] for line in console.export_text().splitlines()}
            assert all(cell.isdigit() for cell in rows["end to end"]), rows
            assert rows["onset -> first Partial"][-1].isdigit(), rows
            await pilot.press("p")
            assert "final base ready" in app.status.render().plain
            assert app.status.final_after_s is not None and app.status.final_after_s > 0
            lowest = list(app.spectrograms["mic"].render_line(app.spectrograms["mic"].size.height - 1))
            assert any(cell.style.bgcolor.triplet.red > 10 for cell in lowest)  # the ring's frames were drawn
            await pilot.press("c")
            assert not any(app.columns[s].finals for s in SAID)
            assert all(not app.columns[s].render_line(0).text.strip() for s in SAID)  # nothing drawn
            assert len(app.session) == sum(len(said) for said in SAID.values())  # kept for save
            await _until(pilot, lambda: "final base evicted" in app.status.render().plain, timeout=60)
            await pilot.press("q")
            await asyncio.wait_for(app.pipeline_done.wait(), 60)
        assert not list(Path("/dev/shm").glob(f"{segments.PREFIX}{os.getpid()}-*"))  # rings unlinked
        assert (tmp_path / "state" / "earwig" / "actors.log").exists()  # actors printed there
    asyncio.run(run())


@pytest.mark.pure
def test_the_spectrogram_puts_low_frequencies_at_the_bottom_and_loud_brighter():
    async def run() -> None:
        app = MonitorApp(Config(), pipeline=False)
        async with app.run_test(size=(60, 30)) as pilot:
            spectrogram: Spectrogram = app.spectrograms["mic"]
            frames = np.full((FRAMES_PER_COLUMN * 20, 80), -10.0, np.float32)
            frames[:, :10] = 1.0  # loud in the lowest mel bins only
            spectrogram.push(frames)
            await pilot.pause()
            height = spectrogram.size.height
            bottom, top = spectrogram.render_line(height - 1), spectrogram.render_line(0)
            assert bottom.cell_length == top.cell_length == spectrogram.size.width
            right_bottom, right_top = list(bottom)[-1], list(top)[-1]
            assert right_bottom.style.color.triplet.red > 200  # bright: loud
            assert right_top.style.color.triplet.red < 10  # dark: quiet
            left = list(bottom)[0]  # before the first frame: nothing drawn yet, dark
            assert left.style.bgcolor.triplet.red < 10
    asyncio.run(run())


@pytest.mark.pure
def test_model_states_show_in_the_status_bar():
    async def run() -> None:
        app = MonitorApp(Config(), pipeline=False)
        async with app.run_test(size=(120, 30)) as pilot:
            app.handle(ModelState(role="final", model="base", state="loading", device="cpu"))
            await pilot.pause()
            assert "final base loading cpu" in app.status.render().plain
            app.handle(ModelState(role="final", model="base", state="evicted", device="cpu"))
            await pilot.pause()
            assert "final base evicted cpu" in app.status.render().plain
            app.handle(Final(source="mic", start=16000, end=32000, text="hello there", language="en"))
            await pilot.pause()
            assert [f.text for f in app.columns["mic"].finals] == ["hello there"]
            assert not app.columns["speakers"].finals
    asyncio.run(run())


@pytest.mark.service
def test_an_unplugged_microphone_shows_disconnected_keeps_its_text_and_comes_back(pulse, speech, tmp_path):
    """A sentence, the microphone unplugged and plugged back in, another sentence: the
    first Final stays on screen and in the session log, the meter says where the device is,
    and the second sentence is transcribed too."""
    config = Config(mic=SourceConfig(device="fakemic"), speakers=SourceConfig(enabled=False),
                    monitor=msgspec.structs.replace(Config().monitor, niceness=0))

    async def say(path: Path) -> None:
        player = await asyncio.create_subprocess_exec("paplay", "--device=micfeed", str(path))
        assert await player.wait() == 0

    async def run() -> None:
        app = MonitorApp(config)
        async with app.run_test(size=(100, 30)) as pilot:
            await _until(pilot, lambda: " dB" in app.levels["mic"].render().plain, timeout=60)
            await say(speech["a"])
            await _until(pilot, lambda: len(app.columns["mic"].finals) == 1)
            with headless.unplugged("fakemic"):
                await _until(pilot, lambda: "disconnected" in app.levels["mic"].render().plain, timeout=60)
                await say(speech["b"])  # into nothing: the device is gone
                await pilot.pause(1.0)
                assert "disconnected" in app.levels["mic"].render().plain  # no level overwrote it
            await _until(pilot, lambda: "reconnected" in app.levels["mic"].render().plain, timeout=60)
            await say(speech["b"])
            await _until(pilot, lambda: len(app.columns["mic"].finals) == 2)
            await pilot.press("q")
            await asyncio.wait_for(app.pipeline_done.wait(), 60)
        said = [f.text for f in app.columns["mic"].finals]
        fox, plants = "The quick brown fox jumps over the lazy dog near the river bank.", \
            "Please remember to water the plants every morning before work."
        # Which sentence each line holds, not how well a loaded machine heard it: under load
        # the first came out as "The quick brown fox jump, so ver ver ver lazy dog ..." (0.54).
        assert word_error_rate(fox, said[0]) + 0.3 <= word_error_rate(plants, said[0]), said
        assert word_error_rate(plants, said[1]) + 0.3 <= word_error_rate(fox, said[1]), said
        logged, = session_log.sessions_dir().glob("*.jsonl")
        assert [f.text for f in session_log.read(logged)] == said
    asyncio.run(run())


ECHO_SPEAKERS = ("librispeech_test-clean_1089-134686-0000.flac", "librispeech_dev-clean_1272-128104-0000.wav")
ECHO_TALKER = "ljspeech_LJ001-0001.wav"


@pytest.mark.service
def test_what_the_speakers_play_into_the_mic_stays_out_of_the_mic_column(pulse, tmp_path):
    """Laptop speakers and no headphones: a loopback 80 ms late at full volume from the
    speakers into the mic, ~16 s of LibriSpeech on the speakers and an LJ Speech talker over
    them from 8 s on. The speakers column has their text; the Mic column has the talker's
    and almost none of the speakers'; the session log has every Final (any echo Final
    marked); the status bar shows the return loss and the delay.

    The talker speaks over echo as loud as they are: their WER was 0.00-0.04 in three runs
    (the text read from the linear filter's output); 0.26-0.33 in four of nine when it was
    read from AEC3's, whose suppressor took words; above 1.0 with the echo not cancelled
    (the speakers' words in their place)."""
    references = manifest_references()
    played = " ".join(references[name] for name in ECHO_SPEAKERS)
    speakers = tmp_path / "speakers.wav"
    soundfile.write(speakers, np.concatenate([read_audio(REAL_AUDIO / name) for name in ECHO_SPEAKERS]), SAMPLE_RATE)
    config = Config(mic=SourceConfig(device="fakemic"), speakers=SourceConfig(device="sysout.monitor"),
                    dictation=msgspec.structs.replace(Config().dictation, in_monitor=False),
                    monitor=msgspec.structs.replace(Config().monitor, niceness=0))

    async def run() -> tuple[str, dict[str, str]]:
        app = MonitorApp(config)
        events: dict[str, int] = {}
        owed: set[tuple[str, int]] = set()  # utterances ended that no Final ends at yet (an echo split: its last part)
        played_all = asyncio.Event()
        real_handle = app.handle

        def counting(message) -> None:
            kind = type(message).__name__
            if kind == "SpeechStart":
                events["open"] = events.get("open", 0) + 1
            elif kind == "SpeechEnd":
                events["open"] = events.get("open", 0) - message.heard  # an unheard stretch opened none
                owed.add((message.source, message.end))
                if message.source == "mic" and played_all.is_set():
                    events["mic ends after playback"] = 1
            elif kind == "Final":
                owed.discard((message.source, message.end))
            real_handle(message)

        app.handle = counting
        async with app.run_test(size=(160, 30)) as pilot:
            await _until(pilot, lambda: " dB" in app.levels["mic"].render().plain
                         and " dB" in app.levels["speakers"].render().plain, timeout=60)
            with headless.bleed(latency_ms=80, volume=1.0):
                await headless.talk_over(speakers, REAL_AUDIO / ECHO_TALKER, 8.0)
                played_all.set()
                await _until(pilot, lambda: events.get("mic ends after playback") and not events["open"] and not owed)
            status = app.status.render().plain
            await pilot.press("q")
            await asyncio.wait_for(app.pipeline_done.wait(), 60)
        return status, {source: " ".join(f.text for f in column.finals) for source, column in app.columns.items()}

    status, app_text = asyncio.run(run())
    assert word_error_rate(played, app_text["speakers"]) < 0.3, app_text
    assert bleed(played, app_text["mic"]) <= 0.1 and word_error_rate(references[ECHO_TALKER], app_text["mic"]) <= 0.25, app_text
    logged, = session_log.sessions_dir().glob("*.jsonl")
    kept = session_log.read(logged)
    shown = [f for f in kept if f.text and not f.echo]  # an empty Final is logged, not shown
    assert " ".join(f.text for f in shown if f.source == "mic") == app_text["mic"]
    assert " ".join(f.text for f in shown if f.source == "speakers") == app_text["speakers"]
    assert re.search(r"echo cancel -\d+ dB at \d+ ms", status), status


@pytest.mark.service
def test_enter_plays_the_selected_line_which_the_speakers_column_does_not_transcribe(pulse, speech):
    """The mic replays a sentence; the speakers are PulseAudio's live loopback. Select the
    mic's line, press enter: the loopback records the line's samples (correlation > 0.9),
    the speakers' utterance of it gets a Final marked echo (logged, not shown)."""
    config = Config(mic=SourceConfig(replay=str(speech["a"])), speakers=SourceConfig(device="sysout.monitor"),
                    dictation=msgspec.structs.replace(Config().dictation, in_monitor=False),
                    monitor=msgspec.structs.replace(Config().monitor, niceness=0))
    said = read_audio(speech["a"])

    async def run() -> tuple[MonitorApp, Final, np.ndarray]:
        app = MonitorApp(config)
        speakers_finals: list[Final] = []
        real_handle = app.handle

        def counting(message) -> None:
            if isinstance(message, Final) and message.source == "speakers":
                speakers_finals.append(message)
            real_handle(message)

        app.handle = counting
        async with app.run_test(size=(120, 30)) as pilot:
            await _until(pilot, lambda: any(final.text for final in app.columns["mic"].finals))
            assert session_log.audio_path(app.session_log, "mic").exists()  # kept while the session runs
            app.columns["mic"].focus()
            await pilot.press("up")
            line = app.selected
            assert line is not None and line.source == "mic" and line.text
            with headless.speakers_recorded() as recorder:
                await pilot.press("enter")
                await _until(pilot, lambda: speakers_finals)
            assert not app.columns["speakers"].finals  # heard, and not shown
            await pilot.press("q")
            await asyncio.wait_for(app.pipeline_done.wait(), 60)
        assert all(final.echo for final in speakers_finals), speakers_finals
        return app, line, recorder.audio()

    app, line, heard = asyncio.run(run())
    assert correlation_in_pieces(heard, said[line.start:line.end]) > 0.9
    logged = session_log.read(app.session_log)
    assert [final.echo for final in logged if final.source == "speakers"] == [True]
    assert not session_log.audio_path(app.session_log, "mic").exists()  # no --keep-audio: gone at the end


RETRIED = "librispeech_test-clean_1221-135766-0001.wav"


@pytest.mark.pipeline
def test_a_line_found_with_slash_and_retried_after_eviction_is_replaced_logged_and_exported(tmp_path):
    """The real pipeline on real speech with tiny.en as the final model, so that a retry
    reads with base (the next larger model installed). Once the models are evicted: `/`
    finds a line by a word of it, `r` retries it: the evicted final actor starts again and
    loads base (its state on screen), the line takes base's text with the revision mark, the session log appends the
    revision by base, and `earwig export` writes the revised text."""
    config = Config(mic=SourceConfig(replay=str(REAL_AUDIO / RETRIED)), speakers=SourceConfig(enabled=False),
                    models=msgspec.structs.replace(Config().models, final="tiny.en", idle_evict_s=3.0),
                    dictation=msgspec.structs.replace(Config().dictation, in_monitor=False),
                    monitor=msgspec.structs.replace(Config().monitor, niceness=0))

    async def run() -> tuple[MonitorApp, Final, Final, list[ModelState]]:
        app = MonitorApp(config)
        states: list[ModelState] = []
        real_handle = app.handle
        app.handle = lambda message: (isinstance(message, ModelState) and states.append(message),
                                      real_handle(message))
        async with app.run_test(size=(120, 30)) as pilot:
            await _until(pilot, lambda: any(s.role == "final" and s.state == "evicted" for s in states))
            lines = list(app.columns["mic"].finals)
            line = lines[len(lines) // 2]
            word = max(line.text.split(), key=len).strip(".,;:!?")
            await pilot.press("slash", *word, "enter")
            assert app.selected is not None and word.lower() in app.selected.text.lower()
            await pilot.press("escape")
            assert not app.search.has_class("-shown")
            app.selected = None
            app.columns["mic"].show_line(line)
            await pilot.pause()
            assert app.selected == line
            evicted_at = len(states)
            await pilot.press("r")
            await _until(pilot, lambda: any(f.revised for f in app.session))
            revised = next(f for f in app.session if f.revised)
            assert [f for f in app.columns["mic"].finals if f.revised] == [revised]
            await _until(pilot, lambda: "retry base evicted" in app.status.render().plain)  # idle again: both go
            await pilot.press("q")
            await asyncio.wait_for(app.pipeline_done.wait(), 60)
        return app, line, revised, states[evicted_at:]

    app, line, revised, states = asyncio.run(run())
    shown = [(s.role, s.model, s.state) for s in states]
    assert shown.index(("retry", "base", "loading")) < shown.index(("retry", "base", "ready")) \
        < shown.index(("retry", "base", "evicted"))  # woken, loaded, shown; gone again when idle
    assert (revised.start, revised.end) == (line.start, line.end) and revised.text
    records = [json.loads(row) for row in app.session_log.read_text().splitlines()]
    assert (records[-1]["revised"], records[-1]["model"], records[-1]["text"]) == (True, "base", revised.text)
    assert sum(r["start"] == line.start for r in records) == 2  # the first text stays in the log
    exported = subprocess.run([sys.executable, "-m", "earwig.cli", "export", app.session_log.stem],
                              capture_output=True, text=True, timeout=60)
    assert exported.returncode == 0 and revised.text in exported.stdout
    if revised.text != line.text:
        assert line.text not in exported.stdout


@pytest.mark.pure
def test_slash_finds_the_newest_line_with_the_words_then_older_ones_and_says_when_none_has_them():
    lines = [Final(source=source, start=start * SAMPLE_RATE, end=(start + 2) * SAMPLE_RATE, text=text, language="en")
             for source, start, text in (("mic", 1, "The train to Berlin leaves at nine."),
                                         ("speakers", 4, "Which train? The Berlin one?"),
                                         ("mic", 8, "No, the bus."), ("mic", 12, "Yes: the Berlin train."))]

    async def run() -> None:
        app = MonitorApp(Config(), pipeline=False)
        async with app.run_test(size=(120, 30)) as pilot:
            for line in lines:
                app.handle(line)
            await pilot.press("r")  # keys for the screen go nowhere else while the search is hidden
            assert not app.search.value
            await pilot.press("slash", *"train berlin", "enter")
            assert app.selected == lines[3] and app.columns["mic"].selected_final == lines[3]
            await pilot.press("enter")
            assert app.selected == lines[1] and app.columns["mic"].selected_final is None
            await pilot.press("enter", "enter")  # the oldest, then the newest again
            assert app.selected == lines[3]
            await pilot.press("ctrl+a", "ctrl+k", *"tram", "enter")
            assert app.selected == lines[3]  # nothing found: the selection stays
            await pilot.press("escape")
            assert not app.search.has_class("-shown") and app.focused is app.columns["mic"]
    asyncio.run(run())
