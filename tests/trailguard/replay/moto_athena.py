"""moto's Athena with today's botocore: a test-only shim.

botocore 1.44 describes Athena with the `rest-json` protocol (POST /query-executions, ...),
but moto 5.2.6 routes Athena only at `/` (the older `json` 1.1 protocol, `X-Amz-Target:
AmazonAthena.StartQueryExecution`) and answers "404 Not yet implemented" otherwise. The
operations and shapes are the same in both protocols, so the shim writes botocore's own
Athena model with its protocol set back to `json`, and makes both sides load it: the test's
boto3 session and moto's router (moto reads botocore models through its `create_loader`).
Production code uses the ordinary client; the runner against the rest-json client is
covered with botocore's Stubber, which checks every request against the current model."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import botocore
import botocore.session
import moto.core.routing
import moto.core.utils

_VERSION = "2017-05-18"


def _write_json_protocol_model(tmp: Path) -> None:
    source = Path(botocore.__file__).parent / "data" / "athena" / _VERSION
    model = json.loads(gzip.decompress((source / "service-2.json.gz").read_bytes()))
    model["metadata"] |= {
        "protocol": "json",
        "protocols": ["json"],
        "jsonVersion": "1.1",
        "targetPrefix": "AmazonAthena",
    }
    for operation in model["operations"].values():
        operation["http"] = {"method": "POST", "requestUri": "/"}
    target = tmp / "athena" / _VERSION
    target.mkdir(parents=True, exist_ok=True)
    (target / "service-2.json").write_text(json.dumps(model))
    (target / "paginators-1.json").write_bytes((source / "paginators-1.json").read_bytes())
    rules = gzip.decompress((source / "endpoint-rule-set-1.json.gz").read_bytes())
    (target / "endpoint-rule-set-1.json").write_bytes(rules)


@contextmanager
def json_protocol_athena(tmp: Path, region: str) -> Iterator[Any]:
    """Inside `mock_aws()`: a boto3 session whose Athena clients agree with moto on the
    protocol (the command under test makes its client from it: set it as boto3's default)."""
    _write_json_protocol_model(tmp)
    original = moto.core.utils.create_loader  # type: ignore[attr-defined]

    def loader(*args: Any, **kwargs: Any) -> Any:
        made = original(*args, **kwargs)
        made.search_paths.insert(0, str(tmp))
        return made

    caches = (
        moto.core.utils.get_service_model,
        moto.core.utils.get_pagination_model,
        moto.core.routing.get_service_router,
    )
    moto.core.utils.create_loader = loader  # type: ignore[attr-defined]
    for cache in caches:
        cache.cache_clear()
    try:
        core = botocore.session.get_session()
        core.get_component("data_loader").search_paths.insert(0, str(tmp))
        yield boto3.Session(botocore_session=core, region_name=region)
    finally:
        moto.core.utils.create_loader = original  # type: ignore[attr-defined]
        for cache in caches:
            cache.cache_clear()
