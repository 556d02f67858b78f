"""The dump rewriter: database names in mariadb-dump's statements, renamed on the fly."""

from __future__ import annotations

import pytest

from platform_backup.adapters.dump_rewrite import DumpRewriter, UnexpectedDatabase

DUMP = (
    b"-- MariaDB dump 10.19\n"
    b"-- Current Database: `zstack`\n"
    b"CREATE DATABASE /*!32312 IF NOT EXISTS*/ `zstack`"
    b" /*!40100 DEFAULT CHARACTER SET utf8mb4 */;\n"
    b"USE `zstack`;\n"
    b"INSERT INTO `t` VALUES ('USE `zstack`;\\nCREATE DATABASE x');\n"
    b"ALTER DATABASE `zstack` CHARACTER SET latin1 COLLATE latin1_swedish_ci ;;\n"
    b"CREATE DEFINER=`root`@`%` PROCEDURE `p`() UPDATE zstack.t SET a = 1 ;;\n"
    b"ALTER DATABASE `zstack` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci ;;\n"
    b"USE `zstack_rest`;\n"
    b"-- Dump completed on 2026-11-25 10:00:00\n"
)
NAMES = {"zstack": "zstack_v", "zstack_rest": "zstack_rest_v"}


def _feed(rewriter: DumpRewriter, data: bytes, size: int) -> bytes:
    out = [rewriter.feed(data[i : i + size]) for i in range(0, len(data), size)]
    return b"".join(out) + rewriter.flush()


@pytest.mark.parametrize("size", [1, 7, 64, len(DUMP)])
def test_statements_naming_a_database_are_renamed_in_any_chunking(size: int) -> None:
    # Given a rewriter into new databases, fed the dump in chunks of any size
    rewriter = DumpRewriter(NAMES, "new")
    out = _feed(rewriter, DUMP, size)
    # Then CREATE, USE and ALTER DATABASE name the new databases; IF NOT EXISTS is gone
    lines = out.decode().splitlines()
    assert lines[2] == ("CREATE DATABASE `zstack_v` /*!40100 DEFAULT CHARACTER SET utf8mb4 */;")
    assert lines[3] == "USE `zstack_v`;"
    assert lines[5] == "ALTER DATABASE `zstack_v` CHARACTER SET latin1 COLLATE latin1_swedish_ci ;;"
    assert lines[8] == "USE `zstack_rest_v`;"
    # And row data and routine bodies are left as they were
    assert lines[4] == DUMP.decode().splitlines()[4]
    assert lines[6] == DUMP.decode().splitlines()[6]
    assert rewriter.completed


def test_in_place_drops_each_database_before_creating_it() -> None:
    rewriter = DumpRewriter({"zstack": "zstack", "zstack_rest": "zstack_rest"}, "replace")
    lines = _feed(rewriter, DUMP, 100).decode().splitlines()
    assert lines[2] == "DROP DATABASE IF EXISTS `zstack`;"
    assert lines[3].startswith("CREATE DATABASE `zstack` ")


def test_chosen_tables_in_place_keep_their_database() -> None:
    # Given a rewriter for chosen tables in place
    names = {"zstack": "zstack", "zstack_rest": "zstack_rest"}
    lines = _feed(DumpRewriter(names, "keep"), DUMP, 100).decode().splitlines()
    # Then the database is created only if it is missing, and nothing drops it
    assert lines[2] == (
        "CREATE DATABASE IF NOT EXISTS `zstack` /*!40100 DEFAULT CHARACTER SET utf8mb4 */;"
    )
    assert not [line for line in lines if line.startswith("DROP DATABASE")]


def test_a_database_the_backup_does_not_list_stops_the_stream() -> None:
    rewriter = DumpRewriter({"zstack": "zstack_v"}, "new")
    with pytest.raises(UnexpectedDatabase):
        _feed(rewriter, DUMP, 4096)


def test_a_stream_cut_before_the_completion_line_is_not_complete() -> None:
    rewriter = DumpRewriter(NAMES, "new")
    _feed(rewriter, DUMP[: DUMP.index(b"-- Dump completed")], 50)
    assert not rewriter.completed
