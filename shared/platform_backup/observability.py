"""The one Logger, Tracer and Metrics of every function; the service name comes from
POWERTOOLS_SERVICE_NAME (set per function in the template)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

NAMESPACE = "PlatformDatabaseBackup"

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace=NAMESPACE)
