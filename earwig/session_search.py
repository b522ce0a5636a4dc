"""Finding a line said in any session: every session log's kept text, searched for words.

A line matches when each word asked for is one of its words, in any order, letters and
digits alone compared (case, punctuation and accents aside: "Don't" finds "dont", "café"
finds "cafe"), as a user remembers a phrase but not its exact wording. Echo Finals (the
speakers heard by the mic) are not lines: nothing shows them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from earwig.config import SAMPLE_RATE
from earwig.messages import Final
from earwig.errors import EarwigError
from earwig.session.log import read_session


@dataclass(frozen=True)
class Hit:
    session: str
    wall: datetime
    final: Final

    @property
    def start_s(self) -> float:
        return self.final.start / SAMPLE_RATE

    def play_command(self) -> str:
        """The command that plays the line again."""
        return f"earwig play {self.session} {self.start_s:.2f} --source {self.final.source}"


def words_of(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in folded if not unicodedata.combining(c))
    return re.findall(r"\w+", plain.replace("'", "").replace("\u2019", ""))


def matches(final: Final, wanted: set[str]) -> bool:
    """Whether a line is one the user looks for with the words ``wanted`` (``words_of`` the
    query; the monitor's ``/`` too)."""
    return final.readable and wanted <= set(words_of(final.text))


def search(logs: Iterable[Path], query: str, since: datetime | None = None,
           warn: Callable[[str], None] = lambda problem: None) -> list[Hit]:
    """Each matching line of these logs, oldest first; ``since``: lines written from then on.
    A log that cannot be read, or lines of one that are damaged, are left out and ``warn``
    is told: one bad session must not hide every other."""
    wanted = set(words_of(query))
    hits = []
    for log in logs:
        try:
            session = read_session(log)
        except EarwigError as error:
            warn(f"{error.problem}: left out of the search")
            continue
        if session.damage(log):
            warn(session.damage(log))
        for logged in session.logged:
            if (since is None or logged.wall >= since) and matches(logged.final, wanted):
                hits.append(Hit(log.stem, logged.wall, logged.final))
    return sorted(hits, key=lambda hit: hit.wall)
