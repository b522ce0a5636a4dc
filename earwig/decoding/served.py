"""A transcription server that speaks the OpenAI API (``POST /v1/audio/transcriptions``, and
``/v1/audio/translations`` for ``models.task = "translate"``): vLLM, speaches, whisper.cpp's
server, LocalAI. One request per utterance; the answer's text and segment times, or one
``ServerFailed`` that says what went wrong in a line. The user's ``models.initial_prompt``
goes with every request, as the local model reads it, before any context.

Why httpx: an asyncio client (the final actor's loop sends while it transcribes locally)
with separate connect and read timeouts, connection reuse, and multipart uploads; the
openai SDK would add its own retries (the fallback decides when to try again) and pydantic.

Why WAV (16-bit PCM): every such server reads it (whisper.cpp's server reads little else
without ffmpeg); at 16 kHz it is 32 kB a second of speech.

What the API does not give: word times (vLLM, speaches and LocalAI return none). A served
Final carries its segments' text and times only (``served_final``).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass

import httpx
import msgspec
import numpy as np
import soundfile
from whisper.tokenizer import TO_LANGUAGE_CODE
from whisper.utils import compression_ratio

from earwig.config import SAMPLE_RATE, ServerConfig
from earwig.decoding.transcribe import Segment, Transcript
from earwig.errors import EarwigError

#: Connecting takes no longer than this on any network a user would serve from.
CONNECT_S = 5.0


@dataclass(frozen=True)
class ServedSegment:
    text: str
    start: float
    end: float
    #: Whisper's own figures, where the server gives them (vLLM's verbose_json does not).
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0


@dataclass(frozen=True)
class ServedText:
    """A server's transcription of one stretch of audio; times in seconds from its start."""

    text: str
    language: str
    segments: tuple[ServedSegment, ...]


class ServerFailed(Exception):
    """A request that got no usable answer; ``problem`` says why in a line."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


class _Segment(msgspec.Struct):
    text: str
    start: float
    end: float
    avg_logprob: float | None = None
    no_speech_prob: float | None = None


class _Answer(msgspec.Struct):
    text: str
    language: str | None = None
    segments: list[_Segment] | None = None


class _Model(msgspec.Struct):
    id: str


class _Models(msgspec.Struct):
    data: list[_Model]


def api_key(config: ServerConfig) -> str | None:
    """The key from the environment variable the config names; None where it names none."""
    if not config.api_key_env:
        return None
    key = os.environ.get(config.api_key_env, "")
    if not key.strip():
        raise EarwigError(f"server.api_key_env names {config.api_key_env}, which is "
                          f"{'empty' if config.api_key_env in os.environ else 'not set'}",
                          f"export {config.api_key_env}=YOUR-KEY, or leave server.api_key_env empty "
                          "for a server that needs no key")
    return key.strip()


class Server:
    """One server, one connection pool, for the final actor's loop; every request asks for
    ``task`` ("transcribe" or "translate", to English) with ``initial_prompt`` first."""

    def __init__(self, config: ServerConfig, task: str = "transcribe", initial_prompt: str = "") -> None:
        self.url, self.model = config.url.rstrip("/"), config.model
        self._path = "/audio/translations" if task == "translate" else "/audio/transcriptions"
        self._initial_prompt = initial_prompt.strip()
        self._client = httpx.AsyncClient(base_url=self.url, headers=_headers(config), timeout=_timeout(config))

    async def aclose(self) -> None:
        await self._client.aclose()

    async def transcribe(self, audio: np.ndarray, language: str | None = None, context: str = "") -> ServedText:
        """The server's text of ``audio`` (16 kHz mono float32), said in ``language`` (None:
        detected), after ``context`` (what was said before it; the prompt, after the user's)."""
        wav = io.BytesIO()
        soundfile.write(wav, audio, SAMPLE_RATE, format="WAV", subtype="PCM_16")
        fields = {"model": self.model, "response_format": "verbose_json", "temperature": "0"}
        if language:
            fields["language"] = language
        if prompt := " ".join(part for part in (self._initial_prompt, context.strip()) if part):
            fields["prompt"] = prompt
        path = self._path
        try:
            answer = await self._client.post(path, data=fields,
                                             files={"file": ("utterance.wav", wav.getvalue(), "audio/wav")})
        except httpx.HTTPError as error:
            raise _failed(self.url, error) from None
        try:
            decoded = msgspec.json.decode(_usable(answer, self.url + path).content, type=_Answer)
        except msgspec.DecodeError:
            raise ServerFailed(f"the server answered something that is not a transcription: "
                               f"{_first_line(answer.text)}") from None
        segments = tuple(ServedSegment(s.text, s.start, s.end, s.avg_logprob or 0.0, s.no_speech_prob or 0.0)
                         for s in decoded.segments or ())
        said = (decoded.language or "").lower()  # OpenAI's API names it ("english"), whisper codes it
        return ServedText(decoded.text.strip(), TO_LANGUAGE_CODE.get(said, said) or language or "", segments)


def served_models(config: ServerConfig) -> list[str]:
    """The names the server serves (``GET /models``); ServerFailed where it cannot say."""
    url = config.url.rstrip("/")
    try:
        with httpx.Client(base_url=url, headers=_headers(config), timeout=_timeout(config)) as client:
            answer = _usable(client.get("/models"), url + "/models")
    except httpx.HTTPError as error:
        raise _failed(url, error) from None
    try:
        return [model.id for model in msgspec.json.decode(answer.content, type=_Models).data]
    except msgspec.DecodeError:
        raise ServerFailed(f"{url}/models answered something that is not a model list: "
                           f"{_first_line(answer.text)}") from None


def checked(config: ServerConfig) -> ServerConfig:
    """The server checked before a session relies on it (reachable, the key accepted, the
    model served), with its model named (the only one it serves, where ``server.model`` is
    empty). Any problem is one EarwigError naming it and the fix."""
    try:
        served = served_models(config)
    except ServerFailed as failed:
        fix = (f"check the key in ${config.api_key_env}" if "refused the API key" in failed.problem
               else "check server.url (the API root, e.g. http://gpu-box:8000/v1) and that the server runs")
        raise EarwigError(failed.problem, fix) from None
    if (config.model and config.model not in served) or (not config.model and len(served) != 1):
        problem = (f"{config.url} does not serve {config.model!r}" if config.model
                   else f"{config.url} serves {len(served)} models")
        raise EarwigError(f"{problem} (it serves: {', '.join(served) or 'none'})",
                          "set server.model to one of those")
    return msgspec.structs.replace(config, model=config.model or served[0])


def _headers(config: ServerConfig) -> dict[str, str]:
    key = api_key(config)
    return {"Authorization": f"Bearer {key}"} if key else {}


def _timeout(config: ServerConfig) -> httpx.Timeout:
    return httpx.Timeout(config.timeout_s, connect=min(CONNECT_S, config.timeout_s))


def _failed(url: str, error: httpx.HTTPError) -> ServerFailed:
    if isinstance(error, httpx.TimeoutException):
        return ServerFailed(f"{url} did not answer in time ({type(error).__name__})")
    return ServerFailed(f"cannot reach {url}: {_first_line(str(error)) or type(error).__name__}")


def _usable(answer: httpx.Response, url: str) -> httpx.Response:
    if answer.status_code in (401, 403):
        raise ServerFailed(f"{url} refused the API key (HTTP {answer.status_code})")
    if answer.status_code >= 400:
        raise ServerFailed(f"{url} answered HTTP {answer.status_code}: {_first_line(answer.text)}")
    return answer


def served_transcript(served: ServedText, audio_s: float) -> Transcript:
    """The answer as the local model's transcript, for the same hallucination rules; without
    word times, the rules that need them (too fast to be said, past the audio) do not apply,
    and where the server gave no segments its text is one segment over the whole audio
    (``audio_s`` long)."""
    segments = served.segments or (ServedSegment(served.text, 0.0, audio_s),)
    return Transcript(served.language, [Segment(s.text, s.start, s.end, s.avg_logprob, s.no_speech_prob,
                                                compression_ratio(s.text)) for s in segments])


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:200]
