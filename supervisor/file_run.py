"""Audio files through the live pipeline, as fast as it goes: ``earwig transcribe``.

Why the live pipeline and not ``whisper.transcribe``: a file then gets exactly the text the
live assistant would have written for it (same VAD, same frames, same final pass), so the
command doubles as a reproducible test of the whole engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import msgspec
import soundfile

from earwig.config import Config, SourceConfig
from earwig.errors import EarwigError
from earwig.messages import ActorFailed, AnyMessage, Final, SpeechEnd
from earwig.shm import segments
from earwig.supervisor.plan import transcription_plan
from earwig.supervisor.supervisor import Supervisor

#: Frames and samples a fast replay may run ahead of the final model: the rings hold the
#: whole file, so a slow model never loses audio (a minute costs ~4 MB of PCM).
RING_MARGIN_S = 30.0


def file_config(config: Config, path: str) -> Config:
    """The config with the file as the only source, replayed as fast as it is read."""
    try:
        seconds = soundfile.info(path).duration
    except (RuntimeError, soundfile.LibsndfileError):
        seconds = 0.0  # ffmpeg decodes it (or the capture actor says why it cannot)
    return msgspec.structs.replace(
        config, mic=SourceConfig(replay=path, realtime=False), speakers=SourceConfig(enabled=False),
        ring_seconds=max(config.ring_seconds, seconds + RING_MARGIN_S))


async def transcribe_file(config: Config, path: str,
                          on_message: Callable[[AnyMessage], None] = lambda m: None) -> list[Final]:
    """Every Final of one file, in order; ``on_message`` sees each message as it comes."""
    plan = transcription_plan(file_config(config, path), segments.run_prefix(), roles=("final",))
    finals: list[Final] = []
    utterances = 0
    async with Supervisor(plan.rings, plan.actors) as supervisor:
        messages = supervisor.subscribe()
        while not (supervisor.finished("mel") and len(finals) == utterances):
            try:
                message = await asyncio.wait_for(messages.get(), 0.25)
            except asyncio.TimeoutError:
                continue
            on_message(message)
            if isinstance(message, SpeechEnd):
                utterances += 1
            elif isinstance(message, Final):
                finals.append(message)
            elif isinstance(message, ActorFailed) and message.fatal:
                raise EarwigError(message.error, message.fix)
    return finals
