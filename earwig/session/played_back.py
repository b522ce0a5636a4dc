"""The user's own playback, kept out of the transcript: a line played again through the
speakers is heard by their loopback, and its Final would repeat the line as new speech.

Why mark spans rather than cancel the sound: earwig knows when it played and for how long,
not how the output mixes it; a Final mostly inside a played span is the playback. It is
marked ``echo`` (logged, never shown, typed or exported), so if someone spoke over the
playback, their words are still in the session log.

Decisions only (no I/O): ``played`` takes each ``PlayedBack``; ``mark`` returns a Final,
marked where it falls within one.
"""

from __future__ import annotations

from collections import deque

import msgspec

from earwig.messages import Final, PlayedBack

#: A Final this much inside a played span (of its length) is the playback.
INSIDE = 0.5
#: Spans kept: a user plays one line at a time, and its Final comes seconds later.
KEEP_SPANS = 16


class PlayedBackSpans:
    def __init__(self) -> None:
        self._spans: deque[PlayedBack] = deque(maxlen=KEEP_SPANS)

    def played(self, span: PlayedBack) -> None:
        self._spans.append(span)

    def mark(self, final: Final) -> Final:
        length = max(1, final.end - final.start)
        for span in self._spans:
            inside = min(final.end, span.end) - max(final.start, span.start)
            if span.source == final.source and inside >= INSIDE * length:
                return msgspec.structs.replace(final, echo=True)
        return final
