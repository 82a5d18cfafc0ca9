"""The baseline an organization declares for its trails (the settings file's `baseline:`):
which checks apply (all by default; `skip:` leaves some out) and the shortest lifecycle a
trail's bucket may have. `posture.baseline` checks every trail against it."""

from __future__ import annotations

from dataclasses import dataclass

CHECKS = {
    "multi_region": "the trail records every region (IsMultiRegionTrail)",
    "organization_trail": "an organization trail exists (IsOrganizationTrail), seen from the management account",
    "log_file_validation": "log file integrity validation is on (LogFileValidationEnabled)",
    "kms_customer_key": "log files are encrypted with a customer managed KMS key (KmsKeyId)",
    "management_events": "read and write management events are recorded (event selectors)",
    "data_events": "S3 data events are recorded for the buckets named in data_event_buckets",
    "insights": "CloudTrail Insights records unusual call and error rates (insight selectors)",
    "bucket_not_public": "the trail's bucket policy opens nothing to everyone",
    "bucket_writable_by_cloudtrail": "the trail's bucket policy lets CloudTrail write (and denies it nothing)",
    "access_logging": "the trail's bucket has server access logging on",
    "versioning": "the trail's bucket keeps versions (versioning Enabled)",
    "lifecycle": "no lifecycle rule deletes log files sooner than lifecycle_min_days",
    "object_lock": "the trail's bucket has Object Lock with a default retention in compliance mode",
}
"""Every check the baseline knows, with what it asks of a trail."""


@dataclass(frozen=True)
class Baseline:
    """What the settings file declares (`baseline:`): the checks that apply, and the shortest
    lifecycle a trail bucket may have."""

    checks: frozenset[str] = frozenset(CHECKS)
    lifecycle_min_days: int = 365
    on_sweep: bool = False
    """Whether each sweep checks the baseline too (`sweep: true`). Off by default: its first run
    opens an incident per deviation in the organization, so see them with `trailguard
    baseline` first."""


DEFAULT = Baseline()
