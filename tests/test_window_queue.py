"""Which windows of ``earwig transcribe`` are decoded together, and when their lines go out
(``decoding/window_queue``), message by message."""

from __future__ import annotations

import pytest

from earwig.decoding.window_queue import WindowQueue

pytestmark = pytest.mark.pure


def test_a_bucket_is_decoded_once_it_fills_a_batch_and_lines_go_out_in_order():
    queue = WindowQueue(batch=2, most=4)
    queue.add_done("file a")
    queue.add(500, "a1")
    queue.add(1000, "a2")
    assert queue.next_batch() == []  # no bucket full, few waiting: wait for more
    queue.add(1000, "a3")
    assert queue.next_batch() == [(2, "a2"), (3, "a3")]
    queue.done(2, "text a2")
    queue.done(3, "text a3")
    assert queue.ready() == ["file a"]  # a1, said before a2, is not done: a2 waits for it
    assert queue.next_batch(flush=True) == [(1, "a1")]
    queue.done(1, "text a1")
    assert queue.ready() == ["text a1", "text a2", "text a3"]
    assert queue.ready() == [] and queue.next_batch(flush=True) == []  # nothing left waiting


def test_too_many_waiting_decodes_the_oldest_ones_bucket_full_or_not():
    queue = WindowQueue(batch=3, most=2)
    for bucket in (500, 1000, 1500):
        queue.add(bucket, bucket)
    assert queue.next_batch() == [(0, 500)]  # three wait, more than two: the oldest goes alone
    queue.done(0, "first")
    assert queue.ready() == ["first"]
    assert queue.next_batch() == []  # two wait: within the bound
    assert [item for _, item in queue.next_batch(flush=True)] == [1000]


def test_a_file_without_windows_still_goes_out_in_its_place():
    queue = WindowQueue(batch=2, most=8)
    queue.add(500, "a1")
    queue.add_done("file b")
    queue.add_done("file c")
    assert queue.ready() == []
    (ticket, _), = queue.next_batch(flush=True)
    queue.done(ticket, "text a1")
    assert queue.ready() == ["text a1", "file b", "file c"]
