"""DynamoDB throttling on the conditional write paths, caused on the client pynamodb uses: a
throttle is retried by botocore's standard policy and then surfaces as a dependency failure,
never as "someone else holds it" (skipped, duplicate, lease lost, not found, conflict)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from platform_backup.adapters.dynamo_errors import is_condition_failure
from platform_backup.adapters.lease import DynamoLeases
from platform_backup.adapters.tables import ExecutionItem, LockItem, PlanItem, StorageItem
from platform_backup.domain.lease import LeaseLost
from platform_backup.errors import DependencyFailed
from tests.support.api import ApiClient
from tests.support.moto_env import MotoEnv
from tests.support.schedule_times import on_time
from tests.support.throttle import THROTTLED, no_backoff, throttled

__all__ = ["no_backoff"]
pytestmark = pytest.mark.usefixtures("no_backoff")
ATTEMPTS = 5


def test_a_transient_throttle_on_a_lease_renewal_is_retried_and_the_lease_kept(
    aws: MotoEnv,
) -> None:
    # Given a held lease
    leases = DynamoLeases()
    assert leases.acquire("p1", "exec-1", "backup", "b", time.time(), 60)[0]
    # When its renewal is throttled twice
    with throttled(LockItem, "UpdateItem", times=2) as throttle:
        leases.renew("p1", "exec-1", time.time(), 60)
    # Then the SDK retried and the renewal went through
    assert throttle.answered == 2
    holder = leases.holder("p1")
    assert holder is not None and holder.owner == "exec-1"


def test_a_lasting_throttle_on_a_lease_renewal_is_a_dependency_failure_not_a_lost_lease(
    aws: MotoEnv,
) -> None:
    leases = DynamoLeases()
    assert leases.acquire("p1", "exec-1", "backup", "b", time.time(), 60)[0]
    with throttled(LockItem, "UpdateItem") as throttle, pytest.raises(DependencyFailed) as caught:
        leases.renew("p1", "exec-1", time.time(), 60)
    assert not isinstance(caught.value, LeaseLost)
    assert THROTTLED in caught.value.message
    # The standard policy's attempts, all of them, were made
    assert throttle.answered == ATTEMPTS
    # And a lease really held by someone else is still LeaseLost
    with pytest.raises(LeaseLost):
        leases.renew("p1", "someone-else", time.time(), 60)


def test_a_throttled_acquire_is_a_dependency_failure_not_a_busy_plan(aws: MotoEnv) -> None:
    leases = DynamoLeases()
    with throttled(LockItem, "PutItem"), pytest.raises(DependencyFailed):
        leases.acquire("p1", "exec-1", "backup", "b", time.time(), 60)
    # Nobody holds the plan: the next acquire takes it
    assert leases.acquire("p1", "exec-2", "backup", "b", time.time(), 60) == (True, None)


@pytest.fixture
def plan_id(api: ApiClient) -> str:
    storage = api.add_storage("primary", "pdb-primary")
    body = {
        "name": "platform-db",
        "objectType": "PlatformDatabase",
        "localStorageIds": [storage],
        "remoteSync": False,
        "policy": {
            "cycle": "daily",
            "executionTime": "00:00",
            "startTime": "2026-12-01T00:00:00+00:00",
            "timezone": "UTC",
        },
        "retention": {"local": {"mode": "count", "value": 7}},
    }
    created = api.post("/v1/plans", body)
    assert created.status == 201, created.body
    return str(created.body["id"])


def _executions(plan_id: str) -> list[dict[str, Any]]:
    return [item.body for item in ExecutionItem.scan() if item.planId == plan_id]


def test_a_scheduled_run_whose_lease_acquire_is_throttled_fails_naming_it_not_skipped(
    aws: MotoEnv, plan_id: str
) -> None:
    # When the schedule fires while every write of the locks table is throttled
    with throttled(LockItem, "PutItem"):
        outcome = aws.invoker.invoke(
            "pdb-executor", {"planId": plan_id, "scheduledTime": on_time()}
        )
    # Then the run is failed with the throttle as its cause, not "skipped: the plan is busy"
    assert outcome.function_error is None, outcome.payload
    [execution] = _executions(plan_id)
    assert execution["status"] == "failed"
    assert THROTTLED in execution["error"]
    assert "busy" not in execution["error"]


def test_a_throttled_scheduled_run_create_fails_the_invocation_so_it_is_delivered_again(
    aws: MotoEnv, plan_id: str
) -> None:
    event = {"planId": plan_id, "scheduledTime": on_time()}
    # When recording the scheduled run is throttled
    with throttled(ExecutionItem, "PutItem"):
        outcome = aws.invoker.invoke("pdb-executor", event)
    # Then the invocation fails (Scheduler retries it), naming the throttle; nothing recorded
    assert outcome.function_error is not None
    assert THROTTLED in outcome.payload.decode()
    assert _executions(plan_id) == []


def test_storage_patch_and_delete_under_throttling_answer_503_not_404_or_409(
    api: ApiClient,
) -> None:
    storage = api.post(
        "/v1/storages",
        {
            "name": "primary",
            "role": "local",
            "bucket": "pdb-primary",
            "region": "us-east-1",
            "capacityBytes": 10**12,
        },
    ).body
    with throttled(StorageItem, "TransactWriteItems"):
        patched = api.patch(f"/v1/storages/{storage['id']}", {"capacityBytes": 10**11})
    assert patched.status == 503, patched.body
    assert patched.body["error"]["code"] == "DependencyFailed"
    assert THROTTLED in patched.body["error"]["message"]
    with throttled(StorageItem, "TransactWriteItems"):
        deleted = api.delete(f"/v1/storages/{storage['id']}")
    assert deleted.status == 503, deleted.body
    # And the storage is still there, unchanged
    assert api.get(f"/v1/storages/{storage['id']}").body == storage


def test_a_throttled_plan_transaction_is_503_not_a_conflict(api: ApiClient, plan_id: str) -> None:
    plan = api.get(f"/v1/plans/{plan_id}").body
    with throttled(PlanItem, "TransactWriteItems"):
        response = api.delete(f"/v1/plans/{plan_id}")
    assert response.status == 503, response.body
    assert api.get(f"/v1/plans/{plan_id}").body == plan


def test_only_a_failed_condition_is_a_condition_failure(aws: MotoEnv) -> None:
    from pynamodb.exceptions import PutError

    LockItem(lockId="x", owner="a").save()
    with pytest.raises(PutError) as condition:
        LockItem(lockId="x", owner="b").save(condition=LockItem.lockId.does_not_exist())
    assert is_condition_failure(condition.value)
    with throttled(LockItem, "PutItem"), pytest.raises(PutError) as throttle:
        LockItem(lockId="y", owner="b").save(condition=LockItem.lockId.does_not_exist())
    assert not is_condition_failure(throttle.value)


def test_a_backup_keeps_its_lease_through_a_throttle_on_its_renewals(
    aws: MotoEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    from platform_backup.services import lease_keeper
    from platform_backup.services.lease_keeper import LeaseKeeper

    monkeypatch.setattr(lease_keeper, "HEARTBEAT_SECONDS", 0.05)
    leases = DynamoLeases()
    assert leases.acquire("p1", "exec-1", "backup", "b", time.time(), 60)[0]
    keeper = LeaseKeeper(lambda: leases.renew("p1", "exec-1", time.time(), 60), "lease-test")
    # When every renewal is throttled for a few beats
    with throttled(LockItem, "UpdateItem") as throttle:
        keeper.start()
        while throttle.answered < 3 * ATTEMPTS:
            time.sleep(0.01)
    # Then the job's next check does not abort it as a lost lease, and the next beat renews
    expires = leases.holder("p1")
    time.sleep(0.3)
    keeper.check()
    keeper.stop()
    renewed = leases.holder("p1")
    assert expires is not None and renewed is not None and renewed.owner == "exec-1"
    assert renewed.expires_at > expires.expires_at


def test_a_throttled_release_does_not_fail_the_job_and_the_lease_expires(aws: MotoEnv) -> None:
    leases = DynamoLeases()
    now = time.time()
    assert leases.acquire("p1", "exec-1", "backup", "b", now, 60)[0]
    with throttled(LockItem, "DeleteItem") as throttle:
        leases.release("p1", "exec-1")
    assert throttle.answered == ATTEMPTS
    # The lease is still there until it expires; then the next job takes it
    assert leases.acquire("p1", "exec-2", "backup", "b", now + 1, 60)[0] is False
    assert leases.acquire("p1", "exec-2", "backup", "b", now + 61, 60)[0] is True
