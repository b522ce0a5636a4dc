"""Single-process semantics of the ring: sequence arithmetic, overruns, readers, waiting."""

import asyncio
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from earwig.shm import Ring, RingSpec, segments

pytestmark = pytest.mark.pure


@pytest.fixture
def make_ring(ring_prefix):
    made = []

    def make(capacity=8, item_len=4, dtype="float32", max_readers=4):
        ring = Ring.create(RingSpec(f"{ring_prefix}{len(made)}", capacity, item_len, dtype, max_readers))
        made.append(ring)
        return ring

    yield make
    for ring in made:
        ring.close()
        ring.unlink()


def items(first, count, item_len=4):
    """Item n is filled with n, so any mix-up of items shows."""
    return np.repeat(np.arange(first, first + count, dtype=np.float32)[:, None], item_len, axis=1)


def test_reader_sees_items_in_order_with_positions_and_stamps(make_ring):
    ring = make_ring()
    writer, reader = ring.writer(), ring.reader(start=0)
    assert writer.write(items(0, 3), time_ns=[10, 20, 30]) == 0
    assert writer.write(items(3, 2), time_ns=40) == 3
    batch = reader.read()
    assert (batch.seq, batch.end, batch.lost) == (0, 5, 0)
    np.testing.assert_array_equal(batch.data, items(0, 5))
    assert batch.time_ns.tolist() == [10, 20, 30, 40, 40]
    assert reader.read() is None
    assert ring.published == 5


def test_overrun_reports_exactly_the_lost_items(make_ring):
    ring = make_ring(capacity=8)
    writer, reader = ring.writer(), ring.reader(start=0)
    writer.write(items(0, 13))
    batch = reader.read()
    assert (batch.seq, batch.lost) == (5, 5)
    np.testing.assert_array_equal(batch.data, items(5, 8))
    assert reader.overruns == 5


def test_writes_larger_than_the_ring_keep_the_newest_items(make_ring):
    ring = make_ring(capacity=4)
    reader = ring.reader(start=0)
    ring.writer().write(items(0, 11))
    batch = reader.read()
    assert (batch.seq, batch.lost) == (7, 7)
    np.testing.assert_array_equal(batch.data, items(7, 4))


def test_readers_are_independent(make_ring):
    ring = make_ring(capacity=8)
    writer = ring.writer()
    early, late = ring.reader(start=0), ring.reader(start=0)
    writer.write(items(0, 3))
    assert early.read().end == 3
    writer.write(items(3, 7))
    assert early.read().lost == 0
    assert late.read().lost == 2


def test_new_reader_without_slot_starts_at_the_newest_item(make_ring):
    ring = make_ring()
    writer = ring.writer()
    writer.write(items(0, 5))
    reader = ring.reader()
    assert reader.read() is None
    writer.write(items(5, 1))
    assert reader.read().seq == 5


def test_reader_slot_lets_a_restarted_reader_resume(make_ring):
    ring = make_ring()
    writer = ring.writer()
    writer.write(items(0, 6))
    first = ring.reader(slot=1, start=0)
    first.read(max_items=4)
    assert ring.reader_cursors() == [4]
    again = ring.reader(slot=1)
    assert again.read().seq == 4
    again.release_slot()
    assert ring.reader_cursors() == []


def test_a_reader_holds_the_oldest_item_it_needs_without_reading(make_ring):
    ring = make_ring()
    ring.writer().write(items(0, 6))
    holder = ring.reader(slot=2, start=0)
    holder.hold(3)
    assert ring.reader_cursors() == [3]
    holder.hold(None)  # it needs nothing: a paced writer no longer waits for it
    assert ring.reader_cursors() == []
    assert holder.read().seq == 0  # holding moved no cursor it reads with


def test_a_reader_that_does_not_announce_its_reads_keeps_what_it_holds_for_its_successor(make_ring):
    ring = make_ring()
    ring.writer().write(items(0, 6))
    assert ring.slot_cursor(3) is None
    reader = ring.reader(slot=3, start=1, announces_reads=False)
    assert ring.slot_cursor(3) == 1  # where it begins
    assert reader.read(max_items=4).seq == 1
    assert ring.slot_cursor(3) == 1  # read, not yet done with: still held
    reader.hold(4)
    assert ring.slot_cursor(3) == 4 and reader.read().seq == 5


def test_attached_ring_shares_data_and_shape(make_ring):
    ring = make_ring(capacity=16, item_len=3, dtype="int16")
    ring.writer().write(np.array([[1, 2, 3]], np.int16))
    other = Ring.attach(ring.spec.name)
    try:
        assert other.spec == ring.spec
        np.testing.assert_array_equal(other.reader(start=0).read().data, [[1, 2, 3]])
    finally:
        other.close()


def test_restarted_writer_continues_the_sequence(make_ring):
    ring = make_ring()
    ring.writer().write(items(0, 3))
    assert ring.writer().write(items(3, 1)) == 3


def test_attach_refuses_a_segment_that_is_not_a_ring(ring_prefix):
    segment = segments.create(f"{ring_prefix}junk", 4096)
    try:
        with pytest.raises(ValueError, match="not an earwig ring"):
            Ring.attach(f"{ring_prefix}junk")
    finally:
        segment.close()
        segments.unlink(segment)


@pytest.mark.parametrize("capacity", [0, 3, 6])
def test_capacity_must_be_a_power_of_two(capacity):
    with pytest.raises(ValueError, match="power of two"):
        RingSpec("x", capacity, 4)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    capacity=st.sampled_from([2, 4, 8]),
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("write"), st.integers(1, 20)),
            st.tuples(st.just("read"), st.one_of(st.none(), st.integers(1, 10))),
        ),
        max_size=40,
    ),
)
def test_sequence_arithmetic_matches_a_model(ring_prefix, capacity, ops):
    """Whatever the interleaving, a reader gets exactly the items still in the ring, in
    order, and is told how many it missed; every item is delivered or counted lost."""
    ring = Ring.create(RingSpec(f"{ring_prefix}h", capacity, 2))
    try:
        writer, reader = ring.writer(), ring.reader(start=0)
        written = delivered = lost = 0
        for op, n in ops:
            if op == "write":
                writer.write(items(written, n, 2))
                written += n
                continue
            expect_from = max(reader.position, written - capacity)
            expect_count = written - expect_from if n is None else min(n, written - expect_from)
            batch = reader.read(n)
            if expect_count == 0:
                assert batch is None
                continue
            assert batch.seq == expect_from and len(batch.data) == expect_count
            np.testing.assert_array_equal(batch.data, items(expect_from, expect_count, 2))
            delivered += expect_count
            lost += batch.lost
        tail = reader.read()
        delivered += 0 if tail is None else len(tail.data)
        lost += 0 if tail is None else tail.lost
        assert delivered + lost == written
        assert reader.overruns == lost
    finally:
        ring.close()
        ring.unlink()


def test_wait_returns_at_once_when_data_is_there(make_ring):
    ring = make_ring()
    reader = ring.reader()
    ring.writer().write(items(0, 1))
    assert asyncio.run(reader.wait(timeout=0)) is True


def test_wait_times_out_without_data(make_ring):
    reader = make_ring().reader()
    assert asyncio.run(reader.wait(timeout=0.02)) is False


def test_wait_wakes_for_an_item_written_by_another_thread(make_ring):
    ring = make_ring()
    reader, writer = ring.reader(), ring.writer()
    timer = threading.Timer(0.05, writer.write, args=(items(0, 1),))
    timer.start()
    assert asyncio.run(reader.wait(timeout=60)) is True
    assert reader.read().seq == 0


def test_wait_until_a_position_sleeps_through_earlier_publishes(make_ring):
    """A model pass waits for the last frame it needs, not for the next one."""
    ring = make_ring(capacity=16)
    reader, writer = ring.reader(start=0), ring.writer()

    def write_one_at_a_time():
        for n in range(6):
            writer.write(items(n, 1))

    async def waited():
        thread = threading.Thread(target=write_one_at_a_time)
        thread.start()
        reached = await reader.wait(timeout=30, until=6)
        thread.join()
        return reached, ring.published

    assert asyncio.run(waited()) == (True, 6)
    assert asyncio.run(reader.wait(timeout=0.02, until=7)) is False


def test_get_reads_a_range_without_a_cursor_and_leaves_out_what_was_overwritten(make_ring):
    ring = make_ring(capacity=8)
    writer = ring.writer()
    writer.write(items(0, 5), time_ns=[10, 20, 30, 40, 50])
    batch = ring.get(1, 3)
    assert (batch.seq, batch.end) == (1, 4) and batch.data[:, 0].tolist() == [1, 2, 3]
    assert batch.time_ns.tolist() == [20, 30, 40]
    assert ring.get(5, 2) is None  # not written yet
    writer.write(items(5, 7))  # items 0..3 are overwritten
    assert ring.get(0, 2) is None
    partly = ring.get(2, 4)
    assert (partly.seq, partly.end) == (4, 6) and partly.data[:, 0].tolist() == [4, 5]
    assert ring.get(9).data[:, 0].tolist() == [9, 10, 11]
    assert ring.stamp_ns(0) is None and ring.stamp_ns(11 * 4) is not None
