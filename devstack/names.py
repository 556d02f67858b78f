"""Local resource names: what a template logical ID is called in the embedded AWS.

A resource's local name is the setting named after its logical ID (StoragesTable ->
storages_table, PrimaryBucket -> primary_bucket, ...; an ARN setting gives its last part), so a
new resource in the template needs no change here as long as the settings follow that rule.
"""

from __future__ import annotations

import re

from platform_backup.settings import Settings

# Logical IDs whose setting does not follow the naming rule, and names used when no setting exists.
_SETTING_ALIASES = {"ScheduleDeadLetterQueue": "schedule_dlq_arn"}
_DEFAULT_NAMES = {"PrimaryBucket": "pdb-primary", "FallbackBucket": "pdb-fallback"}


def local_name(logical_id: str, settings: Settings) -> str:
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", logical_id).lower()
    candidates = [_SETTING_ALIASES.get(logical_id), snake, f"{snake}_name", f"{snake}_arn"]
    for candidate in candidates:
        value = getattr(settings, candidate, None) if candidate else None
        if isinstance(value, str) and value:
            return value.rsplit(":", 1)[-1]
    return _DEFAULT_NAMES.get(logical_id) or "pdb-" + snake.replace("_", "-")
