"""A local Slack Web API, for the tests and the demo: no workspace, no network.

It answers the calls trailguard makes (`auth.test`, `chat.postMessage`, `chat.update`,
`chat.postEphemeral`, `usergroups.users.list`, `views.open`) and interaction
`response_url`s, checks
the bot token and the Block Kit limits Slack enforces (so a message Slack would refuse is
refused here too), records every request, and keeps each message as Slack would show it.
`fail(method, status)` makes the next calls answer 429 (with Retry-After) or 5xx, the way
slack_sdk's own tests drive its mock server. Like Slack, it takes about one
`chat.postMessage` a second per channel and answers the others 429 (`rate_limited` lists
them), so a storm that would be throttled in Slack is throttled here.

    with SlackStub() as slack:
        client = WebClient(token=slack.token, base_url=slack.base_url)
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from chalicelib.slack.pace import POSTS_PER_SECOND

API = "/api/"
RESPONSE = "/response/"


def signed_click(
    transition: str,
    value: str,
    *,
    user: str,
    secret: str,
    response_url: str | None = None,
    age_seconds: int = 0,
    team: str = "T0STUB",
    app: str = "A0TRAILGUARD",
) -> tuple[str, dict[str, str]]:
    """The form body and headers Slack sends to the app when `user` presses a trailguard
    button (a block_actions payload) whose value is `value` (`SlackStub.button_value`),
    signed with slack_sdk's own SignatureVerifier."""
    from slack_sdk.signature import SignatureVerifier

    incident_id = value.split(":", 1)[0]
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": team},
        "api_app_id": app,
        "team": {"id": team, "domain": "stub"},
        "container": {
            "type": "message",
            "message_ts": "1764126000.000001",
            "channel_id": "C0ALERTS",
            "is_ephemeral": False,
        },
        "trigger_id": "1.2.3",
        "channel": {"id": "C0ALERTS", "name": "alerts"},
        "response_url": response_url,
        "actions": [
            {
                "action_id": f"trailguard:{transition}",
                "block_id": f"incident:{incident_id}",
                "text": {"type": "plain_text", "text": transition.title()},
                "value": value,
                "type": "button",
                "action_ts": "1764126001.000002",
            }
        ],
    }
    body = urllib.parse.urlencode({"payload": json.dumps(payload)})
    timestamp = str(int(time.time()) - age_seconds)
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body) or ""
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature,
    }
    return body, headers


def signed_submission(
    view: dict[str, Any],
    values: dict[str, str],
    *,
    user: str,
    secret: str,
    age_seconds: int = 0,
    team: str = "T0STUB",
    app: str = "A0TRAILGUARD",
) -> tuple[str, dict[str, str]]:
    """The form body and headers Slack sends when `user` submits the modal `view` (as
    `views.open` received it) with `values` by input block id (a text input's text, or a
    select's chosen value): a `view_submission` payload, signed with slack_sdk's own
    SignatureVerifier."""
    from slack_sdk.signature import SignatureVerifier

    state: dict[str, Any] = {}
    for block in view.get("blocks", []):
        if block.get("type") != "input" or block.get("block_id") not in values:
            continue
        element = block["element"]
        chosen = values[block["block_id"]]
        if element["type"] == "static_select":
            option = next(o for o in element["options"] if o["value"] == chosen)
            state[block["block_id"]] = {element["action_id"]: {"type": "static_select", "selected_option": option}}
        else:
            state[block["block_id"]] = {element["action_id"]: {"type": element["type"], "value": chosen}}
    payload = {
        "type": "view_submission",
        "team": {"id": team, "domain": "stub"},
        "user": {"id": user, "username": user.lower(), "team_id": team},
        "api_app_id": app,
        "trigger_id": "4.5.6",
        "view": {
            "id": view.get("id", "V0STUB"),
            "type": "modal",
            "callback_id": view.get("callback_id"),
            "private_metadata": view.get("private_metadata"),
            "state": {"values": state},
        },
    }
    body = urllib.parse.urlencode({"payload": json.dumps(payload)})
    timestamp = str(int(time.time()) - age_seconds)
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body) or ""
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature,
    }
    return body, headers


@dataclass
class Request:
    method: str
    """The Web API method (`chat.update`), or `response` for a response_url."""
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class Posted:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread: list[str] = field(default_factory=list)
    updates: int = 0


class SlackStub:
    def __init__(
        self,
        token: str = "xoxb-trailguard-stub",
        groups: dict[str, list[str]] | None = None,
        port: int = 0,
        *,
        posts_per_second: int | None = POSTS_PER_SECOND,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`posts_per_second`: Slack's posting rate per channel, enforced as Slack does (429
        with Retry-After past it; None: not enforced); `clock` tells the second."""
        self.token = token
        self.posts_per_second = posts_per_second
        self.clock = clock
        self.rate_limited: list[str] = []
        """The channel of every chat.postMessage answered 429 because of the posting rate."""
        self._posts: dict[tuple[str, int], int] = {}
        self.port = port
        self.groups = dict(groups or {})
        self.requests: list[Request] = []
        self.messages: dict[tuple[str, str], Posted] = {}
        self.ephemeral: list[dict[str, Any]] = []
        self.views: list[dict[str, Any]] = []
        """Every modal `views.open` opened, as Slack would show it (with the id Slack gave it)."""
        self._failures: dict[str, deque[tuple[int, int]]] = {}
        self._stalls: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None

    # -- running -----------------------------------------------------------------------------

    def start(self) -> SlackStub:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                stub._handle(self)

            def do_GET(self) -> None:
                stub._handle(self)

            def log_message(self, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> SlackStub:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def origin(self) -> str:
        assert self._server is not None, "start the stub first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def base_url(self) -> str:
        return self.origin + API

    def response_url(self, name: str = "1") -> str:
        return f"{self.origin}{RESPONSE}{name}"

    # -- what tests ask for ------------------------------------------------------------------

    def fail(self, method: str, status: int = 429, times: int = 1, retry_after: int = 0) -> None:
        """Answer the next `times` calls of `method` with `status` (429 carries Retry-After)."""
        with self._lock:
            queue = self._failures.setdefault(method, deque())
            queue.extend([(status, retry_after)] * times)

    def stall(self, method: str, seconds: float, times: int = 1) -> None:
        """Answer the next `times` calls of `method` only after `seconds` (a client's timeout)."""
        with self._lock:
            self._stalls.setdefault(method, deque()).extend([seconds] * times)

    def calls(self, method: str) -> list[Request]:
        with self._lock:
            return [request for request in self.requests if request.method == method]

    def only_message(self) -> Posted:
        with self._lock:
            [message] = self.messages.values()
            return message

    def button_value(self, incident_id: str, transition: str) -> str:
        """The value of the `transition` button on the incident's message as Slack shows it
        now: what a press on it sends. LookupError if no message shows that button."""
        with self._lock:
            for message in self.messages.values():
                for block in message.blocks:
                    for element in block.get("elements", []) if block.get("type") == "actions" else []:
                        value = str(element.get("value", ""))
                        if element.get("action_id") == f"trailguard:{transition}" and (
                            value == incident_id or value.startswith(incident_id + ":")
                        ):
                            return value
        raise LookupError(f"no message shows a {transition} button for incident {incident_id}")

    def channel_id(self, channel: str) -> str:
        """The id a channel name stands for (as Slack answers chat.postMessage with the id)."""
        if channel.startswith("#"):
            return "C" + hashlib.sha256(channel.encode()).hexdigest()[:10].upper()
        return channel

    # -- serving -----------------------------------------------------------------------------

    def _handle(self, http: BaseHTTPRequestHandler) -> None:
        path, _, query = http.path.partition("?")
        length = int(http.headers.get("Content-Length") or 0)
        raw = http.rfile.read(length).decode("utf-8") if length else ""
        body = _decode(raw, http.headers.get("Content-Type", ""), query)
        if path.startswith(RESPONSE):
            method = "response"
        elif path.startswith(API):
            method = path[len(API) :]
        else:
            return _send(http, 404, {"ok": False, "error": "unknown_path"})
        with self._lock:
            self.requests.append(Request(method, body, {k.lower(): v for k, v in http.headers.items()}))
            failures = self._failures.get(method)
            failure = failures.popleft() if failures else None
            stalls = self._stalls.get(method)
            stall = stalls.popleft() if stalls else 0.0
        if stall:
            time.sleep(stall)
            return _send(http, 200, {"ok": False, "error": "request_timeout"})
        if failure is not None:
            status, retry_after = failure
            headers = {"Retry-After": str(retry_after)} if status == 429 else {}
            return _send(
                http, status, {"ok": False, "error": "ratelimited" if status == 429 else "fatal_error"}, headers
            )
        if method == "chat.postMessage" and self._over_rate(body):
            return _send(http, 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"})
        if method == "response":
            with self._lock:
                self.ephemeral.append(body)
            return _send(http, 200, "ok")
        if http.headers.get("Authorization") != f"Bearer {self.token}":
            return _send(http, 200, {"ok": False, "error": "invalid_auth"})
        answer = getattr(self, "_" + method.replace(".", "_"), None)
        if answer is None:
            return _send(http, 200, {"ok": False, "error": "unknown_method"})
        with self._lock:
            return _send(http, 200, answer(body))

    def _over_rate(self, body: dict[str, Any]) -> bool:
        """Whether this post goes past the channel's posting rate (counted per second, as
        the posts Slack took: a refused one does not count)."""
        if self.posts_per_second is None or not body.get("channel"):
            return False
        key = (self.channel_id(str(body["channel"])), int(self.clock()))
        with self._lock:
            if self._posts.get(key, 0) >= self.posts_per_second:
                self.rate_limited.append(key[0])
                return True
            self._posts[key] = self._posts.get(key, 0) + 1
        return False

    def posts_per_channel_second(self) -> dict[tuple[str, int], int]:
        """How many posts Slack took in each second of each channel."""
        with self._lock:
            return dict(self._posts)

    def _auth_test(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://trailguard-stub.slack.com/",
            "team": "stub",
            "user": "trailguard",
            "team_id": "T0STUB",
            "user_id": "U0TRAILGUARD",
            "bot_id": "B0TRAILGUARD",
        }

    def _chat_postMessage(self, body: dict[str, Any]) -> dict[str, Any]:
        problem = _message_problem(body)
        if problem:
            return {"ok": False, "error": problem}
        channel = self.channel_id(str(body["channel"]))
        ts = f"1764126000.{next(self._ts):06d}"
        if body.get("thread_ts"):
            parent = self.messages.get((channel, str(body["thread_ts"])))
            if parent is None:
                return {"ok": False, "error": "thread_not_found"}
            parent.thread.append(str(body.get("text", "")))
        else:
            self.messages[(channel, ts)] = Posted(
                channel, ts, str(body.get("text", "")), list(body.get("blocks") or [])
            )
        return {"ok": True, "channel": channel, "ts": ts, "message": {"text": body.get("text"), "ts": ts}}

    def _chat_update(self, body: dict[str, Any]) -> dict[str, Any]:
        problem = _message_problem(body)
        if problem:
            return {"ok": False, "error": problem}
        message = self.messages.get((str(body.get("channel")), str(body.get("ts"))))
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        message.text, message.blocks = str(body.get("text", "")), list(body.get("blocks") or [])
        message.updates += 1
        return {"ok": True, "channel": message.channel, "ts": message.ts, "text": message.text}

    def _chat_postEphemeral(self, body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("user"):
            return {"ok": False, "error": "user_not_in_channel"}
        self.ephemeral.append(body)
        return {"ok": True, "message_ts": f"1764126000.{next(self._ts):06d}"}

    def _views_open(self, body: dict[str, Any]) -> dict[str, Any]:
        view = body.get("view")
        if isinstance(view, str):
            view = json.loads(view)
        if not body.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        problem = _view_problem(view)
        if problem:
            return {"ok": False, "error": problem}
        assert isinstance(view, dict)
        opened = {**view, "id": f"V0STUB{len(self.views):04d}"}
        self.views.append(opened)
        return {"ok": True, "view": opened}

    def _usergroups_users_list(self, body: dict[str, Any]) -> dict[str, Any]:
        group = body.get("usergroup")
        if group not in self.groups:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(self.groups[group])}


def _decode(raw: str, content_type: str, query: str) -> dict[str, Any]:
    if "json" in content_type and raw:
        data = json.loads(raw)
        return data if isinstance(data, dict) else {"_": data}
    fields = urllib.parse.parse_qs(query) | urllib.parse.parse_qs(raw)
    decoded: dict[str, Any] = {key: values[-1] for key, values in fields.items()}
    if isinstance(decoded.get("blocks"), str):
        decoded["blocks"] = json.loads(decoded["blocks"])
    return decoded


def _send(http: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
    data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    http.send_response(status)
    http.send_header("Content-Type", "text/plain" if isinstance(body, str) else "application/json; charset=utf-8")
    http.send_header("Content-Length", str(len(data)))
    for name, value in (headers or {}).items():
        http.send_header(name, value)
    http.end_headers()
    http.wfile.write(data)


_LIMITS = {"header": 150, "section": 3000, "field": 2000, "button": 75, "value": 2000}


def _view_problem(view: Any) -> str | None:
    """What Slack would refuse in a modal: the limits of its views reference."""
    if not isinstance(view, dict) or view.get("type") != "modal":
        return "invalid_arguments"
    title = (view.get("title") or {}).get("text", "")
    if not title or len(title) > 24 or len((view.get("submit") or {}).get("text", "")) > 24:
        return "invalid_arguments"
    if len(view.get("callback_id", "")) > 255 or len(view.get("private_metadata", "")) > 3000:
        return "invalid_arguments"
    blocks = view.get("blocks") or []
    if not blocks or len(blocks) > 100:
        return "invalid_arguments"
    for block in blocks:
        if block.get("type") == "input":
            element = block.get("element") or {}
            if not element.get("action_id") or len(block.get("label", {}).get("text", "")) > 2000:
                return "invalid_arguments"
            if element.get("type") == "static_select":
                options = element.get("options") or []
                if not options or len(options) > 100 or any(len(o["text"]["text"]) > 75 for o in options):
                    return "invalid_arguments"
    return None


def _message_problem(body: dict[str, Any]) -> str | None:
    """What Slack would refuse in a message: the limits of its Block Kit reference."""
    if not body.get("channel"):
        return "channel_not_found"
    text, blocks = body.get("text"), body.get("blocks") or []
    if not text and not blocks:
        return "no_text"
    if text and len(str(text)) > 40000:
        return "msg_too_long"
    if len(blocks) > 50:
        return "invalid_blocks"
    for block in blocks:
        kind = block.get("type")
        if kind == "header" and len(block["text"]["text"]) > _LIMITS["header"]:
            return "invalid_blocks"
        if kind == "section":
            if block.get("text") and len(block["text"]["text"]) > _LIMITS["section"]:
                return "invalid_blocks"
            fields = block.get("fields") or []
            if len(fields) > 10 or any(len(f["text"]) > _LIMITS["field"] for f in fields):
                return "invalid_blocks"
        if kind == "actions":
            for element in block.get("elements", []):
                if len(element["text"]["text"]) > _LIMITS["button"] or len(element.get("value", "")) > _LIMITS["value"]:
                    return "invalid_blocks"
    return None
