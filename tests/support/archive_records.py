"""A plan's point-in-time records as the archiver and the executor write them (through the real
repositories, on moto), and a stand-in for the archiver function's server check."""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from devstack.functions import FunctionSpec
from platform_backup.adapters.archive_repo import DynamoArchiveRepository
from platform_backup.adapters.backup_repo import DynamoBackupRepository
from platform_backup.domain.backup import Backup, BackupCopy
from platform_backup.domain.point_in_time import BinlogPosition
from platform_backup.domain.recovery import HistoryBreak, Segment, SegmentCopy
from tests.support.moto_env import MotoEnv

ARCHIVER = "pdb-archiver"


def segment_key(plan_id: str, file: str) -> str:
    return f"binlog/{plan_id}/7/{file}.zst"


def segment(
    plan_id: str,
    sequence: int,
    index: int,
    opened: datetime,
    closed: datetime,
    continues: bool = True,
    copies: tuple[SegmentCopy, ...] = (),
) -> Segment:
    file = f"mysql-bin.{index:06d}"
    return Segment(
        plan_id=plan_id,
        sequence=sequence,
        file=file,
        server_id=7,
        covered_until=closed,
        opened_at=opened,
        first_gtid=None,
        last_gtid=None,
        last_event_at=closed,
        raw_bytes=1000,
        compressed_bytes=100,
        sha256="0" * 64,
        compression="zstd",
        archived_at=closed,
        continues=continues and sequence > 1,
        copies=copies,
    )


def record_segments(segments: list[Segment]) -> None:
    """Adds each in order, with the state naming it, as the archiver does."""
    repo = DynamoArchiveRepository()
    for seg in segments:
        state = repo.state(seg.plan_id)
        after = dataclasses.replace(
            state,
            last_sequence=seg.sequence,
            last_file=seg.file,
            server_id=seg.server_id,
            covered_until=seg.covered_until,
        )
        assert repo.add_segment(state, seg, after) is not None


def record_break(brk: HistoryBreak) -> None:
    DynamoArchiveRepository().add_break(brk)


def record_backup(
    plan_id: str,
    backup_id: str,
    index: int,
    taken: datetime,
    storage_id: str = "primary",
    bucket: str = "pdb-primary",
    status: str = "available",
) -> Backup:
    """A full backup whose snapshot was at mysql-bin.<index>:400, taken at ``taken``."""
    backup = Backup(
        id=backup_id,
        planId=plan_id,
        executionId=f"exec-{backup_id}",
        createdAt=taken - timedelta(seconds=5),
        copies=[
            BackupCopy(
                storageId=storage_id,
                role="local",
                bucket=bucket,
                region="us-east-1",
                key=f"dumps/{backup_id}.sql.zst",
                manifestKey=f"dumps/{backup_id}.manifest.json",
                status=status,  # type: ignore[arg-type]
                bytes=100,
            )
        ],
        binlog=BinlogPosition(file=f"mysql-bin.{index:06d}", position=400, observedAt=taken),
    )
    DynamoBackupRepository().create(backup)
    return backup


class StandInArchiver:
    """Answers the API's server check as the archiver function would, with the answer given;
    records what it was asked. Registered with moto's Lambda and the local stack's invoker."""

    def __init__(self, aws: MotoEnv, directory: Path) -> None:
        self._answer = directory / "answer.json"
        self._asked = directory / "asked.jsonl"
        source = directory / "archiver_stand_in.py"
        source.write_text(
            "import json, pathlib\n"
            f"ANSWER = pathlib.Path({str(self._answer)!r})\n"
            f"ASKED = pathlib.Path({str(self._asked)!r})\n"
            "def lambda_handler(event, context):\n"
            "    with ASKED.open('a') as out:\n"
            "        out.write(json.dumps(event) + '\\n')\n"
            "    return json.loads(ANSWER.read_text())\n"
        )
        self.answer({"ok": True, "problems": []})
        lam = aws.client("lambda")
        if ARCHIVER not in [f["FunctionName"] for f in lam.list_functions()["Functions"]]:
            role = aws.client("iam").get_role(RoleName="pdb-test-lambda")["Role"]["Arn"]
            lam.create_function(
                FunctionName=ARCHIVER,
                Runtime="python3.12",
                Role=role,
                Handler="app.lambda_handler",
                Code={"ZipFile": _zip()},
            )
        aws.invoker.functions[ARCHIVER] = FunctionSpec(name=ARCHIVER, source=source)

    def answer(self, body: dict[str, Any]) -> None:
        self._answer.write_text(json.dumps(body))

    def asked(self) -> list[dict[str, Any]]:
        if not self._asked.exists():
            return []
        return [json.loads(line) for line in self._asked.read_text().splitlines()]


def remove_archiver(aws: MotoEnv) -> None:
    """The archiver function is not there (not deployed, or deleted): nothing answers."""
    lam = aws.client("lambda")
    if ARCHIVER in [f["FunctionName"] for f in lam.list_functions()["Functions"]]:
        lam.delete_function(FunctionName=ARCHIVER)
    aws.invoker.functions.pop(ARCHIVER, None)


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def lambda_handler(event, context):\n    return None\n")
    return buffer.getvalue()
