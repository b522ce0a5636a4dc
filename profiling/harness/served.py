"""A real transcription server for the tests and ``bench server``: vLLM's CPU build
(``scripts/setup-vllm``) serving the bundled base model, exported as a transformers folder
(``earwig models export``), and a proxy in front of it that fails on demand (answers 500,
answers what is not JSON, stalls, refuses the key), so each fault reaches earwig as it
would from a real server.
"""

from __future__ import annotations

import fcntl
import io
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import soundfile

from earwig.audio.files import read_audio
from earwig.profiling.harness import SHARED_AUDIO

REPO = Path(__file__).resolve().parents[2]
VLLM_PYTHON = REPO / ".vllm" / "bin" / "python"
BASE_FOLDER = REPO / ".vllm" / "models" / "base"
#: What ``scripts/setup-bench --vllm-in-background`` holds while it installs vLLM, and where it
#: writes what the install printed.
SETUP_LOCK, SETUP_LOG = REPO / ".vllm.lock", REPO / ".vllm-setup.log"
#: The name the server gives the model (``server.model``).
SERVED_NAME = "base"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_setup(most_s: float = 900.0) -> str | None:
    """Waits while vLLM's install runs in the background (at most ``most_s``); then None
    when vLLM and its model are installed, or why not where no install was run. Raises
    RuntimeError where the install failed (with its last output) or never ended."""
    deadline = time.monotonic() + most_s
    with open(SETUP_LOCK, "a") as lock:
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"vLLM's install (scripts/setup-vllm) still runs after {most_s:.0f} s") from None
                time.sleep(1.0)
    if VLLM_PYTHON.exists() and (BASE_FOLDER / "config.json").exists():
        return None
    if SETUP_LOG.exists() and SETUP_LOG.stat().st_size:
        raise RuntimeError("vLLM's install failed (scripts/setup-vllm):\n"
                           + "\n".join(SETUP_LOG.read_text().splitlines()[-20:]))
    return "vLLM is not installed (scripts/setup-vllm installs it)"


class VllmServer:
    """vLLM's OpenAI server on 127.0.0.1, started, killed and started again on one port."""

    def __init__(self, folder: Path = BASE_FOLDER, name: str = SERVED_NAME) -> None:
        self.folder, self.name, self.port = folder, name, free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log = Path(tempfile.mkstemp(prefix="earwig-vllm-", suffix=".log")[1])
        self._process: subprocess.Popen | None = None

    def start(self, most_s: float = 300.0) -> None:
        """Start it and return once ``/health`` answers (or raise with its log's end): 30-50 s
        on two cores, more beside other work."""
        deadline = time.monotonic() + most_s
        env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1",
               "VLLM_CPU_OMP_THREADS_BIND": f"0-{(os.cpu_count() or 1) - 1}"}
        with open(self.log, "ab") as log:
            self._process = subprocess.Popen(
                [str(VLLM_PYTHON), "-m", "vllm.entrypoints.openai.api_server", "--model", str(self.folder),
                 "--served-model-name", self.name, "--host", "127.0.0.1", "--port", str(self.port),
                 "--enforce-eager"], stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        while not self._healthy():
            if (code := self._process.poll()) is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"vLLM did not start (exit code {code}, {most_s:.0f} s at most): "
                                   f"{self.log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.5)
        self._warm_up()

    def _warm_up(self) -> None:
        """One request first: vLLM's first transcription compiles and allocates (20 s on two
        cores, then 1 s), which no measured or tested request should pay."""
        wav = io.BytesIO()
        soundfile.write(wav, read_audio(SHARED_AUDIO / "jfk.flac"), 16000, format="WAV", subtype="PCM_16")
        httpx.post(f"{self.url}/audio/transcriptions", data={"model": self.name},
                   files={"file": ("warm.wav", wav.getvalue(), "audio/wav")}, timeout=600).raise_for_status()

    def kill(self) -> None:
        """Kill it (and what it started) as a crash would."""
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()
        self._process = None

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False


@contextmanager
def vllm_server(folder: Path = BASE_FOLDER, name: str = SERVED_NAME) -> Iterator[VllmServer]:
    server = VllmServer(folder, name)
    try:
        server.start()
        yield server
    finally:
        server.kill()
        server.log.unlink(missing_ok=True)


class FaultProxy:
    """A proxy to ``upstream`` (an API root) whose ``mode`` says how it answers: "pass",
    "error" (HTTP 500), "garbage" (200 with text that is not JSON), "stall" (holds each
    request until ``release()``), the three to transcription requests (POST; the list of
    models still answers), "refuse" (401 to any request unless it carries ``key``).
    ``requests`` counts what reached it, by mode; ``posted`` keeps each POST's path and body."""

    def __init__(self, upstream: str, key: str = "") -> None:
        self.upstream, self.key, self.mode = upstream.rstrip("/"), key, "pass"
        self.requests: dict[str, int] = {}
        self.posted: list[tuple[str, bytes]] = []
        self._released = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                proxy._handle(self, "GET")

            def do_POST(self) -> None:
                proxy._handle(self, "POST")

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def set(self, mode: str) -> None:
        self._released.clear()
        self.mode = mode

    def release(self) -> None:
        self._released.set()

    def close(self) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()

    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        mode = self.mode
        self.requests[mode] = self.requests.get(mode, 0) + 1
        body = request.rfile.read(int(request.headers.get("Content-Length", 0) or 0))
        if mode == "refuse" and request.headers.get("Authorization") != f"Bearer {self.key}":
            return self._answer(request, 401, b'{"error": "invalid api key"}')
        if mode == "error" and method == "POST":
            return self._answer(request, 500, b"Internal Server Error")
        if mode == "garbage" and method == "POST":
            return self._answer(request, 200, b"<html>not a transcription</html>")
        if mode == "stall" and method == "POST":
            self._released.wait()
        path = request.path[len("/v1"):] if request.path.startswith("/v1") else request.path
        if method == "POST":
            self.posted.append((path, body))
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("content-type", "authorization")}
        try:
            answer = httpx.request(method, self.upstream + path, content=body, headers=headers, timeout=120)
        except httpx.HTTPError:
            return self._answer(request, 502, b"upstream unreachable")
        self._answer(request, answer.status_code, answer.content, answer.headers.get("content-type", ""))

    @staticmethod
    def _answer(request: BaseHTTPRequestHandler, status: int, body: bytes, kind: str = "text/plain") -> None:
        try:
            request.send_response(status)
            request.send_header("Content-Type", kind)
            request.send_header("Content-Length", str(len(body)))
            request.end_headers()
            request.wfile.write(body)
        except OSError:
            pass  # the client gave up on it (a request it no longer wanted)
