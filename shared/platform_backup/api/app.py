"""The console API: one resolver, routes split by resource."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from platform_backup.api import errors, plans, storages

TITLE = "Platform Database Backup API"
VERSION = "1.0.0"

app = APIGatewayRestResolver(enable_validation=True)
app.include_router(storages.router)
app.include_router(plans.router)
errors.register(app)
