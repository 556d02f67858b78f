"""Whether an S3 bucket exists, this deployment can reach it, and it keeps object versions."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from platform_backup.adapters.aws import client, error_code


class S3BucketProbe:
    def problem(self, bucket: str, region: str) -> str | None:
        """None when the bucket answers and is versioned; otherwise what is wrong, in words for
        the operator."""
        try:
            s3 = client("s3", region)
        except BotoCoreError:
            # InvalidRegionError: a name botocore cannot make an endpoint of.
            return f"region '{region}' is not an AWS region name: give the bucket's region"
        try:
            s3.head_bucket(Bucket=bucket)
            versioning = s3.get_bucket_versioning(Bucket=bucket).get("Status")
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
        if versioning != "Enabled":
            # A restore reads the very version it checked; without versions, an object
            # replaced after the check would be read instead.
            return (
                f"bucket '{bucket}' has versioning {(versioning or 'never enabled').lower()}: "
                "enable versioning on it (VersioningConfiguration Status Enabled)"
            )
        return None
