"""An in-process embedded AWS for unit tests: moto's mock with the system's tables, buckets,
schedule group and functions, the functions run by the local stack's one invoker."""

from __future__ import annotations

import io
import os
import secrets
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from moto import mock_aws

from devstack import moto_fidelity
from devstack.functions import default_functions
from devstack.invoker import Invoker
from devstack.local_settings import LOCAL_SETTINGS
from platform_backup.adapters import aws as aws_clients
from platform_backup.adapters.tables import TABLES, bind_tables
from platform_backup.composition import common as composition
from platform_backup.settings import Settings, load

REGION = "us-east-1"
LOCAL_BUCKETS = ("pdb-primary", "pdb-fallback")
REMOTE_BUCKET = "pdb-remote"


@dataclass
class MotoEnv:
    settings: Settings
    invoker: Invoker

    def client(self, service: str) -> Any:
        # moto keeps the source's composite checksum on a copied object, which botocore would
        # reject on download; tests compare the SHA-256 of the whole object instead.
        config = Config(response_checksum_validation="when_required")
        return boto3.client(service, region_name=REGION, config=config)


def _dummy_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def lambda_handler(event, context):\n    return None\n")
    return buffer.getvalue()


def _reset_caches() -> None:
    composition.reset()
    aws_clients.client.cache_clear()


@contextmanager
def moto_env() -> Iterator[MotoEnv]:
    moto_fidelity.install()
    # The functions read their settings from the environment, as the local stack gives it.
    saved = {name: os.environ.get(name) for name in LOCAL_SETTINGS}
    for name, value in LOCAL_SETTINGS.items():
        os.environ.setdefault(name, value)
    try:
        with _mocked() as env:
            yield env
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def _mocked() -> Iterator[MotoEnv]:
    with mock_aws():
        _reset_caches()
        settings = load(Settings)
        bind_tables(settings)
        for model, _field in TABLES.values():
            model.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in LOCAL_BUCKETS:
            s3.create_bucket(Bucket=bucket)
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        # As the local stack makes it: versioned, with Object Lock.
        s3.create_bucket(Bucket=REMOTE_BUCKET, ObjectLockEnabledForBucket=True)
        boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name=settings.page_token_key_secret_arn, SecretString=secrets.token_urlsafe(48)
        )
        boto3.client("scheduler", region_name=REGION).create_schedule_group(
            Name=settings.schedule_group
        )
        role = boto3.client("iam", region_name=REGION).create_role(
            RoleName="pdb-test-lambda", AssumeRolePolicyDocument="{}"
        )["Role"]["Arn"]
        functions = default_functions(settings)
        lam = boto3.client("lambda", region_name=REGION)
        for name in functions:
            lam.create_function(
                FunctionName=name,
                Runtime="python3.12",
                Role=role,
                Handler="app.lambda_handler",
                Code={"ZipFile": _dummy_zip()},
            )
        invoker = Invoker(functions, REGION)
        invoker.install()
        try:
            yield MotoEnv(settings=settings, invoker=invoker)
        finally:
            invoker.uninstall()
            _reset_caches()
