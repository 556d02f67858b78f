"""The events that start retention (functions/retention): a backup's, the API's after a policy
change, the hourly schedule's; an event naming no plan fails the invocation, so it reaches the
failure queue instead of passing for a run."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.moto_env import MotoEnv

HOURLY = Path(__file__).resolve().parents[2] / "events" / "retention-hourly.json"


def test_the_hourly_event_applies_every_plan(aws: MotoEnv) -> None:
    outcome = aws.invoker.invoke("pdb-retention", json.loads(HOURLY.read_text()))
    assert outcome.function_error is None, outcome.payload
    assert json.loads(outcome.payload) == []  # no plan yet: nothing to apply


def test_the_apis_event_names_the_plan(aws: MotoEnv) -> None:
    outcome = aws.invoker.invoke("pdb-retention", {"planId": "gone"})
    assert outcome.function_error is None, outcome.payload
    summary = json.loads(outcome.payload)
    assert summary["planId"] == "gone"
    assert "no longer exists" in summary["skipped"]


def test_an_event_naming_no_plan_fails_the_invocation(aws: MotoEnv) -> None:
    event = {"detail-type": "Backup Succeeded", "source": "platform-backup", "detail": {}}
    outcome = aws.invoker.invoke("pdb-retention", event)
    assert outcome.function_error is not None
    assert "planId" in outcome.payload.decode()
