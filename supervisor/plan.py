"""What to run for a config: the rings and the actors, decided before anything starts.

Why a separate step: every error a user can fix in the config (unknown device, no audio
server) surfaces here, in the foreground process, as one message before any actor spawns.
"""

from __future__ import annotations

from dataclasses import dataclass

from earwig.actors.capture import CaptureParams
from earwig.actors.capture_devices import resolve
from earwig.actors.runtime import ActorSpec
from earwig.config import SAMPLE_RATE, Config
from earwig.errors import EarwigError
from earwig.messages import SOURCES, Source
from earwig.shm import RingSpec


@dataclass(frozen=True)
class Plan:
    rings: list[RingSpec]
    actors: list[ActorSpec]
    sources: list[Source]


def pcm_ring_name(prefix: str, source: Source) -> str:
    return f"{prefix}pcm-{source}"


def ring_capacity(seconds: float, item_len: int) -> int:
    """Enough whole items for ``seconds`` of 16 kHz audio, rounded up to a power of two."""
    items = max(2, int(seconds * SAMPLE_RATE / item_len))
    return 1 << (items - 1).bit_length()


def capture_plan(config: Config, prefix: str) -> Plan:
    rings, actors, sources = [], [], []
    for source in SOURCES:
        settings = config.source(source)
        if not settings.enabled:
            continue
        device = None if settings.replay else resolve(source, settings.device)
        ring = RingSpec(pcm_ring_name(prefix, source),
                        ring_capacity(config.ring_seconds, config.block_samples),
                        config.block_samples)
        params = CaptureParams(source=source, ring=ring.name, device=device,
                               replay=settings.replay, realtime=settings.realtime)
        rings.append(ring)
        actors.append(ActorSpec(f"capture-{source}", "earwig.actors.capture", params))
        sources.append(source)
    if not sources:
        raise EarwigError("both sources are disabled", "enable --mic or --speakers")
    return Plan(rings, actors, sources)
