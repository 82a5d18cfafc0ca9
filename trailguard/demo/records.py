"""CloudTrail records of real boto3 calls, as CloudTrail would write them.

The demo makes each attacker call against the local AWS and records what botocore sent
and what it parsed back; this module turns that into the record's `requestParameters` and
`responseElements`, with CloudTrail's spelling: lowerCamelCase names, EC2's lists as
`{"items": [...]}` under their wire names (`securityGroupRuleSet`), S3's bucket calls
with `bucketName`, `Host` and the header that carried the change (`x-amz-acl`), a bucket
policy parsed into `bucketPolicy`, and times as CloudTrail prints them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.events.synthetic import api_call_record


@dataclass
class Call:
    """One API call as botocore saw it."""

    service: str
    """The endpoint prefix: `cloudtrail`, `kms`, `s3`, `ec2`..."""
    operation: Any
    """botocore's OperationModel."""
    params: dict[str, Any]
    response: dict[str, Any]


class CallRecorder:
    """Remembers every call made through the clients it is attached to (the last one is `last`)."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._params: dict[str, Any] = {}

    def attach(self, client: Any) -> Any:
        client.meta.events.register("provide-client-params.*.*", self._keep_params)
        client.meta.events.register("after-call.*.*", self._keep_call)
        return client

    @property
    def last(self) -> Call:
        return self.calls[-1]

    def _keep_params(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self._params[model.name] = dict(params)

    def _keep_call(self, http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if http_response.status_code < 300:
            service = model.service_model.endpoint_prefix
            self.calls.append(Call(service, model, self._params.pop(model.name, {}), parsed))


def cloudtrail_record(call: Call, *, identity: Mapping[str, Any], region: str, **fields: Any) -> dict[str, Any]:
    """The CloudTrail record of a successful call (see `events.synthetic.api_call_record` for `fields`)."""
    source = f"{call.service}.amazonaws.com"
    return api_call_record(
        call.operation.name,
        source,
        request_parameters(call),
        response=response_elements(call),
        identity=identity,
        region=region,
        **fields,
    )


def request_parameters(call: Call) -> dict[str, Any] | None:
    if call.service == "s3":
        return _s3_request(call)
    if not call.params:
        return None
    converted: dict[str, Any] = _spelled(call.params, call.operation.input_shape, ec2=call.service == "ec2")
    return converted


def response_elements(call: Call) -> dict[str, Any] | None:
    body = {key: value for key, value in call.response.items() if key != "ResponseMetadata"}
    if call.service == "s3" or not body:
        return None  # CloudTrail writes null for S3's bucket calls and for empty answers
    converted: dict[str, Any] = _spelled(body, call.operation.output_shape, ec2=call.service == "ec2", output=True)
    if call.service == "ec2":
        converted = {
            "requestId": call.response.get("ResponseMetadata", {}).get("RequestId", ""),
            **{("_return" if key == "return" else key): value for key, value in converted.items()},
        }
    return converted


def _s3_request(call: Call) -> dict[str, Any]:
    params = call.params
    bucket = params.get("Bucket", "")
    request: dict[str, Any] = {"bucketName": bucket, "Host": f"{bucket}.s3.amazonaws.com"}
    if "ACL" in params:
        request.update({"acl": [""], "x-amz-acl": [params["ACL"]]})
    if "Policy" in params:
        request.update({"policy": [""], "bucketPolicy": json.loads(params["Policy"])})
    return request


def _spelled(value: Any, shape: Any, *, ec2: bool, output: bool = False) -> Any:
    """`value` with CloudTrail's names, following the botocore shape that describes it."""
    kind = getattr(shape, "type_name", None)
    if isinstance(value, dict) and kind == "structure":
        spelled = {}
        for key, item in value.items():
            member = shape.members.get(key)
            name = (member.serialization.get("name") if output and ec2 and member is not None else None) or _camel(key)
            spelled[name] = _spelled(item, member, ec2=ec2, output=output)
        return spelled
    if isinstance(value, list):
        items = [_spelled(item, getattr(shape, "member", None), ec2=ec2, output=output) for item in value]
        return {"items": items} if ec2 else items
    if isinstance(value, dict):
        return {_camel(key): _spelled(item, None, ec2=ec2, output=output) for key, item in value.items()}
    if isinstance(value, dt.datetime):
        return value.strftime("%b %d, %Y, %I:%M:%S %p")
    return value


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]
