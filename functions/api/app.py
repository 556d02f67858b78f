"""Console API entry point: API Gateway (REST, AWS_IAM) -> the routes of platform_backup.api."""

from __future__ import annotations

from platform_backup import startup

# Init's objects live as long as the function: no full garbage collection while it imports them,
# and none walks them afterwards (platform_backup/startup.py).
startup.begin()

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from platform_backup.api.app import resolve
from platform_backup.composition.api import settings
from platform_backup.observability import logger, metrics

# Cold start: the settings are read and checked now; a missing one fails init, named.
settings()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve(event, context)


# Init is over: what it made stays out of the garbage collector's passes.
startup.done()
