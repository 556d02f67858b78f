"""The parallel restore's order of work (adapters/parallel_restore.py): a table's last frame, the
pieces split from it and its deferred keys wait for that table's earlier work and for nothing
else, so no connection idles at a phase's end (round trips: tests/integration/
test_parallel_restore.py)."""

from __future__ import annotations

from platform_backup.adapters.parallel_restore import _cuts, _reading_order, _Schedule, _Work
from platform_backup.domain.frame_index import Frame, Section


def work(name: str, table: str | None = None, after: bool = False) -> _Work:
    return _Work(lambda: [name.encode()], 1, table, after)


def name(item: _Work | None) -> str:
    assert item is not None
    return item.pieces()[0].decode()


def test_a_tables_last_work_waits_for_its_earlier_work_only_and_in_the_order_it_came() -> None:
    schedule = _Schedule(2)
    schedule.feed(work("A1", "A"))
    schedule.feed(work("A2", "A"))
    first, second = schedule.take(), schedule.take()
    assert (name(first), name(second)) == ("A1", "A2")
    # Given A's last frame and its keys fed while A1 and A2 run, then B's rows
    last, keys = work("A-last", "A", after=True), work("A-keys", "A", after=True)
    schedule.feed(last)
    schedule.feed(keys)
    b1 = work("B1", "B")
    schedule.feed(b1)
    # Then a free connection takes B's rows meanwhile
    assert name(schedule.take()) == "B1"
    schedule.done(b1)
    assert first is not None and second is not None
    schedule.done(first)
    assert not schedule._ready
    schedule.done(second)
    # and A's last frame once both are done; the piece split from it (its end, after) comes
    # before the keys, which were fed earlier but belong after it
    assert name(schedule.take()) == "A-last"
    end = work("A-end", "A", after=True)
    middle = work("A-middle", "A")
    schedule.add("A", [middle, end])
    assert name(schedule.take()) == "A-middle"
    assert not schedule._ready
    schedule.done(middle)
    assert not schedule._ready
    schedule.done(last)
    assert name(schedule.take()) == "A-end"
    assert not schedule._ready
    schedule.done(end)
    assert name(schedule.take()) == "A-keys"
    schedule.done(keys)
    schedule.fed()
    assert schedule.take() is None


def test_a_stopped_schedule_gives_no_more_work() -> None:
    schedule = _Schedule(1)
    schedule.feed(work("A1", "A"))
    schedule.stop()
    assert schedule.take() is None


def test_rows_are_cut_where_an_insert_begins_at_least_the_piece_size_apart() -> None:
    statements = [b"INSERT INTO `t` VALUES (%d,'a;\\nINSERT INTO x');\n" % i for i in range(10)]
    text = b"".join(statements)
    size = len(statements[0])
    cuts = _cuts(text, 0, len(text), 3 * size)
    assert cuts == [3 * size, 6 * size, 9 * size]
    assert all(text[cut:].startswith(b"INSERT INTO `t` VALUES") for cut in cuts)
    assert _cuts(text, 0, len(text), len(text)) == []


def rows(table: str, offset: int, raw_length: int) -> Frame:
    return Frame(Section("rows", "db", table), offset, 10, raw_length)


def test_tables_whose_keys_wait_are_fed_first_the_biggest_first_each_in_the_objects_order() -> None:
    a1, a2 = rows("A", 0, 100), rows("A", 10, 100)
    b1, b2 = rows("B", 20, 300), rows("B", 30, 300)
    c1 = rows("C", 40, 50)
    d1, d2 = rows("D", 50, 900), rows("D", 60, 900)
    # Given the keys of C and D, then of B, waiting for their rows (D the biggest)
    groups = _reading_order([d2, c1, b2, a1, d1, b1, a2], {"db.B", "db.C", "db.D"})
    # Then D's frames come first, then B's, then C's, then the rest in the object's order
    assert groups == [[d1, d2], [b1, b2], [c1], [a1, a2]]
    assert _reading_order([a2, a1], set()) == [[a1, a2]]
