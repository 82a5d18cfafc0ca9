"""A local AWS on 127.0.0.1: moto's server, in a thread of this process.

The demo and the deploy tests talk to it as they would to AWS, through real HTTP, so
that the Chalice CLI, the AWS CLI and boto3 in other processes can share it (set the
variables `environment()` gives). No AWS account and no network beyond loopback.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

ELSEWHERE = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
)
"""Variables that would point boto3 at other credentials or another endpoint."""
ACCOUNT = "123456789012"
"""moto's account id."""
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}

WsgiApp = Callable[..., Any]


@contextlib.contextmanager
def process_environment(values: Mapping[str, str]) -> Iterator[None]:
    """This process's environment with `values` set and nothing else pointing boto3 elsewhere
    (`ELSEWHERE`); everything is put back afterwards."""
    saved = {name: os.environ.get(name) for name in (*ELSEWHERE, *values)}
    for name in ELSEWHERE:
        os.environ.pop(name, None)
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class LocalAws:
    """moto's server on 127.0.0.1 (any free port unless given); a context manager.

    `wrap` puts a WSGI middleware in front of moto (the deploy test adapts one request
    moto cannot take as AWS would).
    """

    def __init__(self, port: int = 0, region: str = "us-east-1", wrap: Callable[[WsgiApp], WsgiApp] | None = None):
        self.region = region
        self._port = port
        self._wrap = wrap
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.server_port}"

    def environment(self) -> dict[str, str]:
        """What a process needs to use this AWS instead of the real one."""
        return {
            **FAKE_CREDENTIALS,
            "AWS_ENDPOINT_URL": self.url,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }

    def start(self) -> LocalAws:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise

        app: WsgiApp = DomainDispatcherApplication(create_backend_app)
        if self._wrap is not None:
            app = self._wrap(app)
        self._server = make_server("127.0.0.1", self._port, app, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-aws", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None

    def client(self, service: str, **options: Any) -> Any:
        import boto3

        return boto3.session.Session(
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            aws_session_token="testing",
            region_name=self.region,
        ).client(service, endpoint_url=self.url, **options)

    def __enter__(self) -> LocalAws:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
