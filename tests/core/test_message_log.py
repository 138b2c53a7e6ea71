"""The SQLite message log behind TieredMemory's chat histories: a reader that keeps what it read
reads only new messages, and starts over when another writer cleared the session."""

from __future__ import annotations

from typing import Any

from agentcost_core.context.message_log import SqliteMessageLog


def test_a_reader_gets_only_new_messages_while_nobody_clears(tmp_path: Any) -> None:
    writer, reader = SqliteMessageLog(f"sqlite:///{tmp_path}/m.db"), SqliteMessageLog(f"sqlite:///{tmp_path}/m.db")
    writer.append("s", ["m0", "m1"])
    first = reader.read_since("s", None)
    assert first.restart and [m for _, m in first.rows] == ["m0", "m1"]
    writer.append("s", ["m2"])
    again = reader.read_since("s", first.epoch, first.rows[-1][0])
    assert not again.restart and again.epoch == first.epoch and [m for _, m in again.rows] == ["m2"]


def test_a_reader_starts_over_after_another_writers_clear(tmp_path: Any) -> None:
    writer, reader = SqliteMessageLog(f"sqlite:///{tmp_path}/m.db"), SqliteMessageLog(f"sqlite:///{tmp_path}/m.db")
    writer.append("s", ["old 0", "old 1", "old 2"])
    writer.append("other", ["kept"])
    held = reader.read_since("s", None)
    writer.clear("s")
    writer.append("s", ["new 0", "new 1"])
    now = reader.read_since("s", held.epoch, held.rows[-1][0])
    assert now.restart and now.epoch != held.epoch and [m for _, m in now.rows] == ["new 0", "new 1"]
    writer.clear("s")  # cleared again, even with nothing appended since: the reader still starts over
    after = reader.read_since("s", now.epoch, now.rows[-1][0])
    assert after.restart and after.rows == []
    assert [m for _, m in reader.read("other")] == ["kept"]  # other sessions untouched
