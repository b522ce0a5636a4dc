"""Chaos: while both sources replay minutes of speech, an actor is killed with SIGKILL for
every end of speech. Every utterance must still get exactly one Final in the session log, with the
text a run without kills gets, and no ring may be left behind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from earwig.config import Config, SourceConfig
from earwig.messages import ActorReady, Final, PauseSource, SourceEnded, SpeechEnd
from earwig.session.keeper import Keeping, SessionKeeper
from earwig.session.log import new_session_path, read
from earwig.supervisor.plan import transcription_plan
from earwig.supervisor.supervisor import RestartPolicy, Supervisor
from installed import require
from speech_text import spoken_file, word_error_rate

pytestmark = pytest.mark.pipeline

SAID = {
    "mic": ["We will meet in the conference room after lunch on Friday.",
            "Our flight was delayed by two hours because of the storm.",
            "My brother is learning to play the piano this summer.",
            "Please send the quarterly report to the whole team by Friday.",
            "The new library has thousands of books and a quiet reading room.",
            "Remember to water the plants every morning before you leave for work.",
            "The doctor told him to drink more water and sleep longer.",
            "The train to the city leaves every fifteen minutes from platform four.",
            "She painted the kitchen a bright shade of yellow last weekend.",
            "We need to buy bread, eggs and fresh vegetables for dinner tonight."],
    "speakers": ["Turn left at the second traffic light and park behind the old library.",
                 "Could you close the window because it is getting cold in here?",
                 "The museum opens at nine and closes early on Sundays.",
                 "He forgot his umbrella at the station and got completely wet.",
                 "Our neighbours are planning a garden party for next Saturday.",
                 "The children built a tall sandcastle on the beach this morning.",
                 "Please remember to lock the back door before going to bed.",
                 "The concert was cancelled because the singer had a sore throat.",
                 "I would like to order a large coffee with milk and two croissants.",
                 "The river flooded the fields after three days of heavy rain."],
}
VOICES = {"mic": "en-us", "speakers": "en-gb"}
VICTIMS = ["capture-mic", "capture-speakers", "mel", "preview", "final"]
#: Generous: a restart loop is not what is tested here (test_supervisor.py tests that).
POLICY = RestartPolicy(first_delay_s=0.1, max_delay_s=1.0, max_restarts=100)


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Config:
    require("espeak-ng")
    folder = tmp_path_factory.mktemp("chaos")
    files = {s: spoken_file(folder / f"{s}.wav", said, VOICES[s], gap_s=1.2).path for s, said in SAID.items()}
    return Config(mic=SourceConfig(replay=str(files["mic"]), realtime=False),
                  speakers=SourceConfig(replay=str(files["speakers"]), realtime=False), ring_seconds=300.0)


async def _run(config: Config, prefix: str, log: Path, chaos: bool):
    """The whole pipeline until every utterance has its Final; returns the SpeechEnds seen,
    and the kills with how long each actor took to be back (kill -> its ActorReady).

    With ``chaos``, every SpeechEnd (20 in all) is paid with a SIGKILL of a random running
    actor, one at a time: both replays pause until the victim is back, so the number of
    kills is the number of utterances, whatever the machine's speed."""
    plan = transcription_plan(config, prefix)
    ended: set[str] = set()
    speech_ends: set[tuple[str, int, int]] = set()
    finals: set[tuple[str, int, int]] = set()
    killed: tuple[str, float] | None = None  # the victim not yet back, and when it was killed
    owed = 0
    recovered_s: list[float] = []
    victims: list[str] = []
    chooser = random.Random(8)
    async with Supervisor(plan.rings, plan.actors, POLICY, keeper=SessionKeeper(Keeping(log=log))) as supervisor:
        events = supervisor.subscribe()

        def pause(paused: bool) -> None:
            for source in ("mic", "speakers"):
                supervisor.tell(PauseSource(source=source, paused=paused))

        deadline = time.monotonic() + 240
        while not (len(ended) == 2 and supervisor.finished("mel") and speech_ends <= finals
                   and killed is None and not owed):
            assert time.monotonic() < deadline, (
                f"{len(speech_ends - finals)} utterances without a Final; sources ended {sorted(ended)}, "
                f"mel finished {supervisor.finished('mel')}, waiting for {killed} to be back, {owed} kills owed, "
                f"running {[v for v in VICTIMS if supervisor.pid(v) is not None]}, killed in turn {victims}")
            if killed is not None and supervisor.finished(killed[0]):
                # It had ended on its own (exit 0) as the kill came: the fork server reports a
                # child's exit a moment after it, so a process that has just ended still looks
                # alive, and a kill of it does nothing. It is not restarted: none to wait for.
                killed = None
                pause(False)
            running = {v: supervisor.pid(v) for v in VICTIMS if supervisor.pid(v) is not None}
            if owed and killed is None and running:
                victim = chooser.choice(list(running))
                pause(True)
                with contextlib.suppress(ProcessLookupError):  # it ended since: as above
                    os.kill(running[victim], signal.SIGKILL)
                killed, owed = (victim, time.monotonic()), owed - 1
                victims.append(victim)
            elif owed and killed is None:
                owed = 0  # every actor is done: nothing left to kill
            try:
                message = await asyncio.wait_for(events.get(), 1.0)
            except asyncio.TimeoutError:
                continue
            if isinstance(message, SourceEnded):
                ended.add(message.source)
            elif isinstance(message, SpeechEnd):
                speech_ends.add((message.source, message.start, message.end))
                owed += chaos
            elif isinstance(message, Final):
                finals.add((message.source, message.start, message.end))
            elif isinstance(message, ActorReady) and killed is not None and message.actor == killed[0]:
                recovered_s.append(time.monotonic() - killed[1])
                killed = None
                pause(False)
    return speech_ends, recovered_s


#: Alone: its twenty restarts reload models on both cores. In one fresh-clone run beside the
#: other files (with a stray busy loop on the machine too) it took 205 s, against 50 alone.
@pytest.mark.alone
@pytest.mark.timeout(600)
def test_kill_9_of_random_actors_loses_no_utterance_and_duplicates_none(config, ring_prefix, tmp_path):
    calm_log, chaos_log = new_session_path(tmp_path / "calm"), new_session_path(tmp_path / "chaos")
    calm_ends, _ = asyncio.run(_run(config, ring_prefix, calm_log, chaos=False))
    chaos_ends, recovered_s = asyncio.run(_run(config, ring_prefix, chaos_log, chaos=True))

    for ends, log in ((calm_ends, calm_log), (chaos_ends, chaos_log)):
        logged = [(f.source, f.start, f.end) for f in read(log)]
        assert len(logged) == len(set(logged)) == len(ends) and set(logged) == ends  # one Final each
    calm, chaos = read(calm_log), read(chaos_log)
    for source, said in SAID.items():
        text = {name: " ".join(f.text for f in sorted(run, key=lambda f: f.start) if f.source == source)
                for name, run in (("calm", calm), ("chaos", chaos))}
        spans = sorted((f.start, f.end) for f in chaos if f.source == source)
        calm_spans = {(f.start, f.end) for f in calm if f.source == source}
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), (source, [s for s in spans if s not in calm_spans])  # no utterance heard twice
        calm_wer, chaos_wer = word_error_rate(" ".join(said), text["calm"]), word_error_rate(" ".join(said), text["chaos"])
        # Nothing lost or doubled is asserted above, utterance by utterance. The text itself
        # differs between any two runs, kills or not: the final pass's batches (which
        # utterances are decoded together) and the preview's drafts depend on timing; on a
        # paced replay a chaos run was seen 0.03-0.06 above its calm run with every utterance
        # answered once. A lost utterance costs about a tenth of a source's words.
        lines = {name: [f"{f.start / 16000:6.2f}-{f.end / 16000:6.2f} {f.text}"
                        for f in sorted(run, key=lambda f: f.start) if f.source == source]
                 for name, run in (("calm", calm), ("chaos", chaos))}
        assert chaos_wer <= calm_wer + 0.1, \
            f"{source}: WER {calm_wer:.4f} calm, {chaos_wer:.4f} after kills\ncalm:\n" + "\n".join(lines["calm"]) \
            + "\nchaos:\n" + "\n".join(lines["chaos"])
    assert len(recovered_s) >= 10, recovered_s  # the run was chaotic
    print(f"\nchaos: {len(recovered_s)} kills; back after p50 {np.percentile(recovered_s, 50):.2f} s, "
          f"max {max(recovered_s):.2f} s; Finals {len(chaos)} of {len(calm)}")


def test_an_utterance_in_progress_at_the_end_still_gets_its_final(config, ring_prefix, tmp_path):
    """Stopping mid-sentence (Ctrl-C, SIGTERM, q): the mel actor ends the utterance, the
    final model transcribes it before it exits, and the Final is in the session log."""
    live = Config(mic=SourceConfig(replay=config.mic.replay), speakers=SourceConfig(enabled=False))

    async def scenario():
        plan = transcription_plan(live, ring_prefix)
        log = new_session_path(tmp_path)
        async with Supervisor(plan.rings, plan.actors, POLICY, keeper=SessionKeeper(Keeping(log=log))) as supervisor:
            events = supervisor.subscribe()
            starts = 0
            while starts < 2:  # mid-way through the second sentence
                message = await asyncio.wait_for(events.get(), 120)
                starts += type(message).__name__ == "SpeechStart"
            await asyncio.sleep(1.5)
        return read(log)

    finals = asyncio.run(scenario())
    assert len(finals) == 2 and finals[1].text, [f.text for f in finals]
    said = SAID["mic"][1].split()
    assert word_error_rate(" ".join(said[:len(finals[1].text.split())]), finals[1].text) <= 0.35, finals[1].text
