"""``make bench``, cold starts: each function's init as Lambda runs it, in a fresh interpreter.

Lambda's init imports the handler's file (``functions/<name>/app.py``, module ``app``) with the
function's directory and the shared layer on the path and the function's environment set; this
does the same in a subprocess, times the import from inside it and reads its resident memory
(VmRSS) right after. The baseline is a handler importing only boto3 and powertools' Logger.
Functions are loaded by path only, so the section keeps working whatever the shared package's
modules are called. Median of BENCH_COLD_REPEAT (default 5) runs, interleaved across functions.

Noise: two shared cores; one run varies by 10-20 %, the median and the range are printed, and
the ratios move by 0.1-0.2 between runs. BENCH_COLD_INSTRUCTIONS=1 adds each import's instruction
count (valgrind's cachegrind, one run each; slow, but the same from run to run).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.aws import DEFAULT_REGION, FAKE_ACCESS_KEY, FAKE_SECRET_KEY
from devstack.functions import template_function_dirs
from devstack.local_settings import LOCAL_SETTINGS
from devstack.template import REPO_ROOT, Template, load_template, properties

FUNCTIONS = ("api", "scheduler", "executor", "archiver", "retention", "restore", "monitor")
# The bound: these four build no dump or restore and must stay near the baseline.
BOUNDED = {"api": 1.5, "scheduler": 1.5, "retention": 1.5, "monitor": 1.5}
BASELINE = "baseline"
BASELINE_CLIENT = "baseline + client"
_BASELINE_SOURCE = '''"""Only boto3 and powertools' Logger."""
import boto3
from aws_lambda_powertools import Logger

logger = Logger()
{extra}

def lambda_handler(event, context):
    return {{}}
'''

# Run in the fresh interpreter: the function's directory first on the path, as /var/task is.
# Nothing but the import is timed; json is imported afterwards.
_PROBE = """
import sys, time, importlib
started, cpu_started = time.perf_counter(), time.process_time()
sys.path.insert(0, sys.argv[1])
importlib.import_module("app")
seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
import json, resource
status = dict(
    line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line
)
print(json.dumps({
    "seconds": seconds,
    "cpu": cpu,
    "rssKib": int(status["VmRSS"].split()[0]),
    "maxRssKib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    "modules": len(sys.modules),
    "zstandard": "zstandard" in sys.modules,
}))
"""


# Under valgrind: the import alone, and the same interpreter without it (subtracted).
_IMPORT_ONLY = (
    "import sys, importlib; sys.path.insert(0, sys.argv[1]); importlib.import_module('app')"
)
_STARTUP_ONLY = "import sys, importlib"
_VALGRIND = ("valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null")


@dataclass(frozen=True)
class ColdStart:
    seconds: float
    cpu: float
    rss_kib: int
    modules: int
    zstandard: bool


def function_environment(template: Template) -> dict[str, dict[str, str]]:
    """Code directory -> the literal environment variables the template gives the function
    (globals included). References (table names, ARNs) are left to the local defaults."""
    globals_ = (template.function_globals().get("Environment") or {}).get("Variables") or {}
    resources = template.resources("AWS::Serverless::Function", "AWS::Lambda::Function")
    env: dict[str, dict[str, str]] = {}
    for logical_id, code_dir in template_function_dirs(template).items():
        own = (properties(resources[logical_id]).get("Environment") or {}).get("Variables") or {}
        merged = {**globals_, **own}
        env[code_dir] = {k: str(v) for k, v in merged.items() if isinstance(v, str | int)}
    return env


def base_environment() -> dict[str, str]:
    """The local stack's environment (devstack.aws.EmbeddedAws), less the endpoint: an init
    makes no call, and the timing must not depend on a server being up."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_", "PYTHON"))
    }
    env.update(
        AWS_REGION=DEFAULT_REGION,
        AWS_DEFAULT_REGION=DEFAULT_REGION,
        AWS_ACCESS_KEY_ID=FAKE_ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=FAKE_SECRET_KEY,
        POWERTOOLS_TRACE_DISABLED="true",
        POWERTOOLS_SERVICE_NAME="pdb-local",
    )
    # What the template sets by !Ref / !GetAtt, under the local stack's names.
    env.update(LOCAL_SETTINGS)
    return env


def probe(function_dir: Path, env: dict[str, str]) -> ColdStart:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(function_dir)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"cold start of {function_dir} failed:\n{done.stderr[-3000:]}")
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return ColdStart(
        report["seconds"], report["cpu"], report["rssKib"], report["modules"], report["zstandard"]
    )


def instructions(code: str, function_dir: Path, env: dict[str, str]) -> int:
    """Instructions a fresh interpreter runs for ``code`` (valgrind; hash seed fixed)."""
    done = subprocess.run(
        [*_VALGRIND, sys.executable, "-c", code, str(function_dir)],
        env={**env, "PYTHONHASHSEED": "0"},
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"valgrind on {function_dir} failed:\n{done.stderr[-3000:]}")
    return int(found.group(1).replace(",", ""))


def environments(dirs: dict[str, Path]) -> dict[str, dict[str, str]]:
    declared = function_environment(load_template())
    base = base_environment()
    shared = str(REPO_ROOT / "shared")
    return {
        name: {**base, **declared.get(name, {}), "PYTHONPATH": f"{path}:{shared}"}
        for name, path in dirs.items()
    }


def measure(
    repeat: int, count_instructions: bool = False
) -> tuple[dict[str, list[ColdStart]], dict[str, int]]:
    with tempfile.TemporaryDirectory(prefix="pdb-coldstart-") as tmp:
        dirs: dict[str, Path] = {}
        for name, extra in ((BASELINE, ""), (BASELINE_CLIENT, 's3 = boto3.client("s3")')):
            path = Path(tmp) / name.replace(" + ", "-")
            path.mkdir()
            (path / "app.py").write_text(_BASELINE_SOURCE.format(extra=extra))
            dirs[name] = path
        for name in FUNCTIONS:
            dirs[name] = REPO_ROOT / "functions" / name
        envs = environments(dirs)
        runs: dict[str, list[ColdStart]] = {name: [] for name in dirs}
        for _ in range(repeat):
            for name, path in dirs.items():
                runs[name].append(probe(path, envs[name]))
        counted: dict[str, int] = {}
        if count_instructions:
            startup = instructions(_STARTUP_ONLY, dirs[BASELINE], envs[BASELINE])
            for name, path in dirs.items():
                counted[name] = instructions(_IMPORT_ONLY, path, envs[name]) - startup
    return runs, counted


def report() -> list[str]:
    repeat = int(os.environ.get("BENCH_COLD_REPEAT", "5"))
    count = os.environ.get("BENCH_COLD_INSTRUCTIONS") == "1"
    if count and shutil.which("valgrind") is None:
        raise SystemExit("BENCH_COLD_INSTRUCTIONS=1 needs valgrind (apt-get install valgrind)")
    runs, counted = measure(repeat, count)
    median = {name: statistics.median(r.seconds for r in rs) for name, rs in runs.items()}
    cpu = {name: statistics.median(r.cpu for r in rs) for name, rs in runs.items()}
    base = cpu[BASELINE]
    lines = [
        f"cold start: import of functions/<name>/app.py in a fresh interpreter, median of {repeat}"
        " (interleaved), VmRSS after it. The ratio is of CPU seconds, which the neighbours' load"
        " on two shared cores changes less than wall seconds (still by 0.1-0.2 between runs);"
        " wall seconds beside them",
        f"{'function':18s} {'cpu s':>6s} {'wall s':>7s} {'wall range':>11s} {'x base':>7s}"
        f" {'RSS MiB':>8s} {'modules':>7s} {'zstd':>5s}  verdict",
    ]
    verdicts: list[bool] = []
    for name, rs in runs.items():
        seconds = median[name]
        spread = f"{min(r.seconds for r in rs):.2f}-{max(r.seconds for r in rs):.2f}"
        rss = statistics.median(r.rss_kib for r in rs) / 1024
        ratio = cpu[name] / base
        bound = BOUNDED.get(name)
        verdict = ""
        if bound is not None:
            met = ratio <= bound
            verdicts.append(met)
            verdict = f"<= {bound}x: {'met' if met else 'MISSED'}"
        zstd = "yes" if rs[-1].zstandard else "no"
        lines.append(
            f"{name:18s} {cpu[name]:6.3f} {seconds:7.2f} {spread:>11s} {ratio:6.2f}x {rss:8.1f}"
            f" {rs[-1].modules:7d} {zstd:>5s}  {verdict}"
        )
    lines.append(
        f"api, scheduler, retention, monitor <= 1.5x the baseline: "
        f"{'met' if all(verdicts) else 'MISSED'}"
    )
    if counted:
        lines.append("instructions of the import (valgrind, one run each; the same every run):")
        for name, count_ in counted.items():
            lines.append(f"{name:18s} {count_ / 1e6:8.0f} M {count_ / counted[BASELINE]:6.2f}x")
    return lines


if __name__ == "__main__":
    for line in report():
        print(line, flush=True)
