"""The X-Ray tracer of the long jobs (executor, restore steps), whose calls are worth a trace of
their own; the SDK costs the control functions more cold start than their traces are worth."""

from __future__ import annotations

from aws_lambda_powertools import Tracer

tracer = Tracer()
