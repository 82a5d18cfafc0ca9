"""A local AWS that `chalice deploy` can complete against: moto's server plus one test-only shim.

moto's ImportRestApi and PutRestApi take only OpenAPI 3 documents with an
`info.description`; Chalice sends Swagger 2.0 (which API Gateway accepts). The shim
rewrites that one request body; everything else reaches moto untouched. It is not part
of trailguard: real deployments talk to API Gateway.

Run it by itself to follow docs/deploy.md against it:

    .venv/bin/python -m tests.deploy_aws --port 5000
"""

from __future__ import annotations

import io
import json
import sys
import time
from typing import Any

from trailguard.local.aws import LocalAws, WsgiApp


def swagger_to_moto(app: WsgiApp) -> WsgiApp:
    def shimmed(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO", "").startswith("/restapis") and environ.get("REQUEST_METHOD") in ("POST", "PUT"):
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            try:
                document = json.loads(body)
            except ValueError:
                document = None
            if isinstance(document, dict) and "swagger" in document:
                document.pop("swagger")
                document["openapi"] = "3.0.1"
                document.setdefault("info", {}).setdefault("description", "")
                body = json.dumps(document).encode()
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return app(environ, start_response)

    return shimmed


def deploy_aws(port: int = 0) -> LocalAws:
    return LocalAws(port=port, wrap=swagger_to_moto)


if __name__ == "__main__":
    chosen = int(sys.argv[sys.argv.index("--port") + 1]) if "--port" in sys.argv else 5000
    with deploy_aws(chosen) as local:
        print("local AWS (moto + the ImportRestApi shim) at", local.url, "; in another shell:")
        for name, value in local.environment().items():
            print(f"export {name}={value}")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
