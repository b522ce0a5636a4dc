"""The desktop, audio server and scoring the tests and the benchmarks share: a headless
X server and PulseAudio, a real X text field, word error rate. Development tools in the
repository, not part of the installed package."""

from pathlib import Path

#: The real speech the benchmarks read (``../shared/audio`` beside the repository).
SHARED_AUDIO = Path(__file__).resolve().parents[3] / "shared" / "audio"
