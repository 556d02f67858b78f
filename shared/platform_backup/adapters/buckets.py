"""Whether an S3 bucket exists and this deployment can reach it."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from platform_backup.adapters.aws import client, error_code


class S3BucketProbe:
    def problem(self, bucket: str, region: str) -> str | None:
        """None when the bucket answers; otherwise what is wrong, in words for the operator."""
        try:
            client("s3", region).head_bucket(Bucket=bucket)
        except ClientError as exc:
            code = error_code(exc)
            if code in ("404", "NoSuchBucket", "NotFound"):
                return f"bucket '{bucket}' does not exist in {region}: create it first"
            if code in ("403", "AccessDenied", "Forbidden"):
                return f"bucket '{bucket}' exists but this deployment may not access it"
            if code in ("301", "PermanentRedirect", "400"):
                return f"bucket '{bucket}' is not in region {region}: give its region"
            return f"bucket '{bucket}' cannot be reached ({code})"
        except BotoCoreError as exc:
            return f"bucket '{bucket}' cannot be reached: {type(exc).__name__}"
        return None
