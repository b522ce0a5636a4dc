"""The desktop, audio server and scoring the tests and the benchmarks share: a headless
X server and PulseAudio, a real X text field, word error rate, the real speech and what
was said in it. Development tools in the repository, not part of the installed package."""

import csv
from pathlib import Path

#: The real speech the benchmarks read (``../shared/audio`` beside the repository).
SHARED_AUDIO = Path(__file__).resolve().parents[3] / "shared" / "audio"
#: Its public recordings, each with its reference transcript in MANIFEST.tsv.
REAL_AUDIO = SHARED_AUDIO / "real"


def manifest_references() -> dict[str, str]:
    """What was said in each file of ``REAL_AUDIO``, by file name (empty: no reference)."""
    with open(REAL_AUDIO / "MANIFEST.tsv", newline="") as manifest:
        return {row["file"]: row["reference"] for row in csv.DictReader(manifest, delimiter="\t")}
