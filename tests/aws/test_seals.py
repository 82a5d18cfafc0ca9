"""KMS makes and checks the seals: a wrong tag is no seal, and a key it cannot use is an error,
not a forgery."""

from __future__ import annotations

import boto3
import pytest

from chalicelib.aws.seals import KmsSealer, message
from tests.conftest import REGION
from trailguard.bootstrap import ensure_key

pytestmark = pytest.mark.unit


def test_kms_checks_the_seal_and_a_key_it_cannot_use_is_an_error_not_a_forgery(aws):
    kms = boto3.client("kms", region_name=REGION)
    ensure_key(kms, "alias/seal-test")
    text = message("incident", "inc-1", {"plan": []})
    tag = KmsSealer(kms, "alias/seal-test").seal(text)
    fresh = KmsSealer(kms, "alias/seal-test")  # nothing remembered: KMS answers
    assert fresh.verify(text, tag) is True
    assert fresh.verify(message("incident", "inc-1", {"plan": [1]}), tag) is False  # VerifyMac: invalid
    assert fresh.verify(text, "not base64!") is False and fresh.verify(text, None) is False
    with pytest.raises(kms.exceptions.NotFoundException):
        KmsSealer(kms, "alias/no-such-key").verify(text, tag)  # cannot check: raised, not "changed"
