"""One backup through the executor's pipeline, in its own process so that the benchmark measures
its time and memory (child processes included) apart from the S3 server's."""

from __future__ import annotations

import argparse
import gc
import json
import time

from platform_backup.adapters import aws
from platform_backup.adapters.dump_pipeline import run_backup
from platform_backup.adapters.failover_upload import Destination
from platform_backup.adapters.mariadb import DbConnection


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3306)
    parser.add_argument("--user", default="root")
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--compression", choices=["zstd", "gzip"], default="zstd")
    parser.add_argument("--level", type=int)
    parser.add_argument("databases", nargs="+")
    args = parser.parse_args()
    # As in a warm invocation of the executor: modules imported, the client made and the garbage
    # collector's heap frozen at init (functions/executor/app.py), not during the run.
    client = aws.client("s3", "us-east-1")
    gc.freeze()
    started = time.perf_counter()
    result = run_backup(
        DbConnection(args.host, args.port, args.user, ""),
        args.databases,
        [Destination(args.bucket, args.key, client)],
        backup_id="bench",
        plan_id="bench",
        compression=args.compression,
        level=args.level,
    )
    report = {
        "seconds": time.perf_counter() - started,
        "rawBytes": result.raw_bytes,
        "compressedBytes": result.compressed_bytes,
        "dumpOptions": result.manifest["dumpOptions"],
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
