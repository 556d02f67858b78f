"""The README's GRANT statements are the rights the jobs check and the integration test grants
(tests/integration/test_database_users.py builds its users from the same constants)."""

from __future__ import annotations

import re
from pathlib import Path

from platform_backup.adapters.db_privileges import DUMP_RIGHTS, RESTORE_RIGHTS

README = Path(__file__).resolve().parents[2] / "README.md"


def granted(user: str, on: str) -> set[str]:
    text = README.read_text(encoding="utf-8")
    pattern = rf"GRANT ([A-Z ,\n]+?)\s+ON {re.escape(on)} TO '{user}'@'%';"
    found = re.findall(pattern, text)
    assert found, f"the README grants {user} nothing on {on}"
    return {right.strip() for right in " ".join(found).replace("\n", " ").split(",")}


def test_the_readme_grants_the_dump_user_what_the_dump_checks() -> None:
    assert granted("pdb_dump", "`zstack`.*") == set(DUMP_RIGHTS)
    assert granted("pdb_dump", "`zstack\\_rest`.*") == set(DUMP_RIGHTS)
    assert granted("pdb_dump", "mysql.proc") == {"SELECT"}


def test_the_readme_grants_the_restore_user_what_the_restore_checks() -> None:
    assert granted("pdb_restore", "`zstack`.*") == set(RESTORE_RIGHTS)
    assert granted("pdb_restore", "`zstack\\_restored\\_%`.*") == set(RESTORE_RIGHTS)
    assert granted("pdb_restore", "*.*") == {"SET USER"}
