"""The one Logger and Metrics of every function; the service name comes from
POWERTOOLS_SERVICE_NAME (set per function in the template). The X-Ray tracer is in tracing.py,
for the long jobs only (docs/decisions.md: "X-Ray SDK only in the executor and the restore")."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

NAMESPACE = "PlatformDatabaseBackup"

logger = Logger()
metrics = Metrics(namespace=NAMESPACE)
