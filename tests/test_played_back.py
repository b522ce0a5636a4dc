"""Which Finals are the user's own playback heard again (``PlayedBackSpans``), message by message."""

import pytest

from earwig.messages import Final, PlayedBack
from earwig.session.played_back import PlayedBackSpans

pytestmark = pytest.mark.pure


def _final(source: str, start_s: float, end_s: float) -> Final:
    return Final(source=source, start=int(start_s * 16000), end=int(end_s * 16000), text="Played again.", language="en")


def test_a_final_mostly_inside_a_played_span_of_its_source_is_marked_and_others_pass():
    spans = PlayedBackSpans()
    before = _final("speakers", 10.0, 12.0)
    assert spans.mark(before) is before  # nothing played yet
    spans.played(PlayedBack(source="speakers", start=20 * 16000, end=24 * 16000))
    assert spans.mark(_final("speakers", 19.6, 23.0)).echo  # the VAD's lead before the span: still inside
    assert not spans.mark(_final("speakers", 17.0, 21.0)).echo  # a quarter inside: someone else talking
    assert not spans.mark(_final("mic", 20.5, 23.0)).echo  # another source's positions
    assert not spans.mark(before).echo
    spans.played(PlayedBack(source="speakers", start=40 * 16000, end=42 * 16000))
    assert spans.mark(_final("speakers", 20.5, 23.0)).echo and spans.mark(_final("speakers", 40.2, 41.0)).echo
