"""What started a run, recorded on its execution and on the backup it made."""

from __future__ import annotations

from typing import Literal

# Its schedule, an operator's run-now, or a restore's safety backup.
Trigger = Literal["schedule", "manual", "pre-restore"]
