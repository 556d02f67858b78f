"""Issue 15's restore figures of several data sets side by side, each beside its target."""

from __future__ import annotations

from bench.restore import (
    FRAMED_BYTES_TARGET,
    FRAMED_TIME_TARGET,
    TABLE_BYTES_TARGET,
    TABLE_TIME_TARGET,
    TARGET,
    Figures,
)

# label, bound, at most (else below), shown as a percentage, whether it concerns a named table
TARGETS = (
    ("project / classic", TARGET, True, False, False),
    ("project / myloader", 1.0, True, False, False),
    ("one table: bytes read / object", TABLE_BYTES_TARGET, False, True, True),
    ("one table: time / full restore", TABLE_TIME_TARGET, False, True, True),
    ("framed / unframed backup: time", FRAMED_TIME_TARGET, True, False, False),
    ("framed / unframed backup: bytes", FRAMED_BYTES_TARGET, True, False, False),
)
LABEL, TARGET_WIDTH, CELL = 32, 9, 24


def cell(value: float, bound: float, at_most: bool, percent: bool, applies: bool) -> str:
    shown = f"{value:.3%}" if percent else f"{value:.3f}x"
    if not applies:
        return f"{shown} (-)"
    met = value <= bound if at_most else value < bound
    return f"{shown} {'met' if met else 'MISSED'}"


def side_by_side(sets: list[Figures]) -> list[str]:
    def row(label: str, target: str, cells: list[str]) -> str:
        return f"{label:{LABEL}s} {target:{TARGET_WIDTH}s}" + "".join(
            f" {c:{CELL}s}" for c in cells
        )

    lines = [
        row("issue 15, side by side", "target", [f.db for f in sets]),
        row(
            "  data: GB of SQL, MB of zstd",
            "",
            [
                f"{f.dumped.raw_bytes / 1e9:.2f} GB, {f.dumped.compressed_bytes / 1e6:.0f} MB"
                for f in sets
            ],
        ),
        row("  full restore, project (s)", "", [f"{f.project:.2f} s" for f in sets]),
    ]
    for label, bound, at_most, percent, named_only in TARGETS:
        target = f"{'<=' if at_most else '<'} {f'{bound:.0%}' if percent else f'{bound:.2f}'}"
        cells = [
            cell(f.ratios()[label], bound, at_most, percent, f.table_named or not named_only)
            for f in sets
        ]
        lines.append(row(label, target, cells))
    lines.append(row("  the table restored alone", "", [f.table for f in sets]))
    lines.append(
        row(
            "every table identical",
            "yes",
            [
                "NO: " + ", ".join([*f.differing, *([] if f.table_same else ["one table"])])
                if f.differing or not f.table_same
                else "yes"
                for f in sets
            ],
        )
    )
    lines.append(
        "(-): no target: that data set's one table is merely its smallest, not a small table of a"
        " platform database"
    )
    return lines
