'''The HTTP layer every `api/` file shares.

Vercel's Python runtime serves an api file's `handler` class (a
`BaseHTTPRequestHandler`) and answers 501 for any method the class lacks. An api
file therefore subclasses `VercelHandler` and names its endpoints by method:

    class handler(VercelHandler):  # noqa: N801
        """The worker's one entry point."""

        routes = Routes(GET=run_jobs, POST=run_jobs)

and gets request parsing, the 64 KiB body limit, JSON responses, the error shape
`{"error", "message", "details"?}`, 405 for methods it does not serve, and a 500
(logged and sent to Sentry) only for bugs.

The form is the builder's, not ours: `@vercel/python` reads the file's syntax
tree (it does not import it) and accepts a top-level `class handler(...)`, or an
`app`/`application` it would then serve as WSGI/ASGI; an assignment
`handler = ...` is refused. So an api file never defines a top-level `app` or
`application` either. The base class is a plain name, so mypy checks the file
like any other; `Routes` is read-only (one table per class, shared by its
requests) and refuses a method this layer does not serve when the file is imported.

Input no endpoint could use is refused here, once, before any endpoint runs:
malformed request lines and headers (the stdlib's refusals, answered as JSON),
a Content-Length that is not ASCII digits, chunked bodies, a request not sent
within REQUEST_READ_TIMEOUT_SECONDS, and text PostgreSQL cannot store (NUL, lone
surrogates) in any query parameter, header or JSON body, which is also parsed
with a nesting limit (`lib.json_input`). docs/input-and-sessions.md lists them.
'''

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar, NamedTuple, TypeVar
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, ConfigDict, ValidationError

from lib.errors import (
    ApiError,
    ConfigurationError,
    DatabaseError,
    DatabaseNotMigrated,
    DatabaseUnavailable,
    InvalidJson,
    InvalidRequest,
    LengthRequired,
    MethodNotAllowed,
    PayloadTooLarge,
    StatementTimeout,
)
from lib.jobs.registry import TaskRegistry, default_registry
from lib.json_input import UnsafeInput, parse_json, text_problem
from lib.jsonnames import CamelModel
from lib.observability import capture_bug, flush_sentry, init_sentry, log, log_exception
from lib.settings import get_settings
from lib.validation import field_errors

MAX_BODY_BYTES = 64 * 1024
REQUEST_READ_TIMEOUT_SECONDS = 20.0
# After refusing a request whose bytes were not all read, keep reading (and
# dropping) them for a moment before closing: closing a socket with unread input
# sends a TCP reset, which can destroy the refusal before the client reads it.
LINGER_SECONDS = 2.0
LINGER_MAX_BYTES = 1024 * 1024
SERVED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD")

ModelT = TypeVar("ModelT", bound=BaseModel)


class Request(NamedTuple):
    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: Mapping[str, str]  # lower-cased names
    body: bytes
    registry: TaskRegistry = default_registry  # the task types this server runs (its handler class's)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def input(self, model: type[ModelT]) -> ModelT:
        """Validate the JSON body, or else the query string, against `model`.

        Query values are text, so they are coerced ("5" → 5, "true" → True). A
        JSON body has types of its own and is validated strictly: `"dryRun": "yes"`
        is a 400, not a guess. Unknown fields are refused when the model forbids them.
        """
        if self.body.strip():
            if self.query:
                raise InvalidRequest("Send parameters in the JSON body or in the query string, not both.")
            self.json_object()  # a clear 400 for malformed or non-object JSON
            return _validate(model, self.body, source="body")
        names = [name for name, _ in self.query]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise InvalidRequest(
                "Each query parameter may appear once.",
                details=[{"field": n, "message": "given more than once"} for n in repeated],
            )
        return _validate(model, dict(self.query), source="query")

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object ({} when empty)."""
        if not self.body.strip():
            return {}
        try:
            data = parse_json(self.body)
        except UnsafeInput as exc:
            raise InvalidJson(exc.message, details=exc.details) from None
        if not isinstance(data, dict):
            raise InvalidRequest("The body must be a JSON object.")
        return data


class Response:
    """An endpoint's answer; `lib.http` sends it as JSON."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = headers if headers is not None else {}


def json_response(body: Any, status: int = 200, **headers: str) -> Response:
    return Response(status=status, body=body, headers=dict(headers))


class ResponseBody(CamelModel):
    """The published model of a response body: camelCase keys, and keys beyond those declared allowed.

    A body may carry more than its model declares (SPEC: "extras allowed"), so
    adding a key to a response never turns it into a 500 in `model_response`.
    """

    model_config = ConfigDict(extra="allow")


def model_response(model: type[BaseModel], body: dict[str, Any], status: int = 200, **headers: str) -> Response:
    """A JSON response whose body is first checked against `model`, the shape published in docs/openapi.json.

    The body is sent as built (the model only validates it), so the check cannot
    change a response; a body that does not match is a bug, answered as a 500.
    """
    model.model_validate(body)
    return Response(status=status, body=body, headers=dict(headers))


Endpoint = Callable[[Request], Response]


class Routes(Mapping[str, Endpoint]):
    """An api file's method → endpoint table, read-only: `Routes(GET=run_jobs, POST=run_jobs)`."""

    __slots__ = ("_endpoints",)

    def __init__(self, **endpoints: Endpoint) -> None:
        unknown = set(endpoints) - set(SERVED_METHODS)
        if unknown:
            raise ValueError(f"unsupported HTTP methods: {sorted(unknown)}")
        self._endpoints = dict(endpoints)

    def __getitem__(self, method: str) -> Endpoint:
        return self._endpoints[method]

    def __iter__(self) -> Iterator[str]:
        return iter(self._endpoints)

    def __len__(self) -> int:
        return len(self._endpoints)

    def __repr__(self) -> str:
        return f"Routes({', '.join(self._endpoints)})"


def _validate(model: type[ModelT], data: dict[str, str] | bytes, *, source: str) -> ModelT:
    try:
        if isinstance(data, bytes):
            return model.model_validate_json(data, strict=True)
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest("The request has invalid fields.", details=field_errors(exc, whole=source)) from None


def _error_response(exc: ApiError) -> Response:
    return Response(status=exc.status, body=exc.body())


# The `error` code answered, with a 503, for the errors of the layers below the
# edge, which know nothing of HTTP; the most specific kind first.
_UNAVAILABLE_CODES: tuple[tuple[type[Exception], str], ...] = (
    (StatementTimeout, "database_timeout"),
    (DatabaseNotMigrated, "database_not_migrated"),
    (DatabaseUnavailable, "database_unavailable"),
    (ConfigurationError, "server_misconfigured"),
)


def _unavailable_response(exc: DatabaseError | ConfigurationError) -> Response:
    """The 503 answered for a database or configuration error: `{"error": <its code>, "message": <its text>}`."""
    code = next(code for kind, code in _UNAVAILABLE_CODES if isinstance(exc, kind))
    return Response(status=503, body={"error": code, "message": str(exc)})


def dispatch(routes: Mapping[str, Endpoint], request: Request) -> Response:
    """Route a request to its endpoint and turn every outcome into a JSON response."""
    endpoint = routes.get(request.method)
    allow = ", ".join(sorted(routes))
    try:
        init_sentry(get_settings())
        if endpoint is None:
            raise MethodNotAllowed(f"{request.method} is not served here; use {allow}.")
        return endpoint(request)
    except ApiError as exc:
        response = _error_response(exc)
        if isinstance(exc, MethodNotAllowed):
            response.headers["Allow"] = allow
        if exc.status >= 500:
            log("http.unavailable", "error", path=request.path, status=exc.status, error=exc.message)
        return response
    except DatabaseError as exc:
        log("http.unavailable", "error", path=request.path, status=503, error=str(exc))
        capture_bug(exc.__cause__ or exc, path=request.path, outage="database")
        return _unavailable_response(exc)
    except ConfigurationError as exc:
        log("http.misconfigured", "error", path=request.path, error=str(exc))
        return _unavailable_response(exc)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: a bug
        log_exception("http.bug", exc, path=request.path, method=request.method)
        capture_bug(exc, path=request.path)
        return Response(
            status=500,
            body={"error": "internal_error", "message": "An unexpected error occurred; it has been reported."},
        )
    finally:
        flush_sentry()


# Status → (error code, message) for requests refused before an endpoint sees them.
_PROTOCOL_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request", "The request line or its headers are malformed."),
    408: ("request_timeout", "The request was not received in time."),
    411: ("length_required", "Send the body with a Content-Length header; chunked bodies are not accepted."),
    413: ("payload_too_large", f"The body may be at most {MAX_BODY_BYTES} bytes."),
    414: ("uri_too_long", "The request line is too long."),
    431: ("header_fields_too_large", "A header line is too long, or there are too many headers."),
}
# The stdlib answers these two with a 5xx; the caller sent something this server
# will never serve, which is a client error: 405 (with Allow) and 400.
_CLIENT_ERROR_FOR = {
    501: (405, "method_not_allowed", "This method is not served here."),
    505: (400, "http_version_not_supported", "Only HTTP/1.0 and HTTP/1.1 are served."),
}


def _header_problems(headers: Mapping[str, str]) -> list[dict[str, Any]]:
    """Headers whose values cannot be used as text: every header is checked, not only those read today."""
    details = []
    for name, value in headers.items():
        problem = text_problem(name) or text_problem(value)
        if problem:
            field = f"headers.{name}" if text_problem(name) is None else "headers"
            details.append({"field": field, "message": problem, "type": "unstorable_text"})
    return details


def _query_problems(query: tuple[tuple[str, str], ...]) -> list[dict[str, Any]]:
    details = []
    for name, value in query:
        problem = text_problem(name) or text_problem(value)
        if problem:
            field = name if text_problem(name) is None else "query"
            details.append({"field": field, "message": problem, "type": "unstorable_text"})
    return details


def _linger(connection: socket.socket) -> None:
    """Half-close, then read and drop what the client still sends, until it closes or LINGER_SECONDS pass."""
    deadline = time.monotonic() + LINGER_SECONDS
    try:
        connection.shutdown(socket.SHUT_WR)
        drained = 0
        while drained < LINGER_MAX_BYTES and (remaining := deadline - time.monotonic()) > 0:
            connection.settimeout(remaining)
            chunk = connection.recv(65536)
            if not chunk:
                return
            drained += len(chunk)
    except OSError:
        return


class VercelHandler(BaseHTTPRequestHandler):
    """The base of every api file's `handler`: it serves the methods of `routes` (see the module docstring)."""

    routes: ClassVar[Routes] = Routes()
    # What the endpoints' requests carry as `request.registry`; a test serves a
    # subclass with a registry of its own (tests/support/api.py).
    registry: ClassVar[TaskRegistry] = default_registry
    server_version = "job-queue"
    sys_version = ""
    # Socket timeout for reading the request (and writing the answer): a client
    # that sends half a request releases its thread after this long instead of
    # holding it forever. It does not limit how long an endpoint may run.
    timeout = REQUEST_READ_TIMEOUT_SECONDS

    def _serve(self) -> None:
        try:
            request_or_error = self._read_request()
        except TimeoutError:
            self.send_error(408)
            return
        except Exception as exc:  # noqa: BLE001 - a bug in reading the request must still get an answer
            log_exception("http.bug", exc, path=self.path[:200], method=self.command)
            request_or_error = Response(
                status=500,
                body={"error": "internal_error", "message": "An unexpected error occurred; it has been reported."},
            )
        if isinstance(request_or_error, Response):
            response = request_or_error
        else:
            response = dispatch(self.routes, request_or_error)
        try:
            self._send(response)
        except OSError:
            self.close_connection = True  # the client left before the answer; nothing to tell it

    def _read_request(self) -> Request | Response:
        try:
            split = urlsplit(self.path)  # an absolute-form target may hold a malformed host: "http://[::1/"
            query = tuple(parse_qsl(split.query, keep_blank_values=True, strict_parsing=False))
        except ValueError:
            return _error_response(InvalidRequest("The request target or its query string is malformed."))
        headers = {k.lower(): v for k, v in self.headers.items()}
        if "transfer-encoding" in headers:
            self.close_connection = True  # the unread body must not be parsed as a next request
            return _error_response(LengthRequired(_PROTOCOL_ERRORS[411][1]))
        lengths = {value.strip() for value in self.headers.get_all("content-length") or ()}
        if len(lengths) > 1:
            self.close_connection = True
            return _error_response(InvalidRequest("Send one Content-Length header."))
        length_header = lengths.pop() if lengths else "0"
        # ASCII digits only: str.isdigit() and int() also take "²" or "١".
        if not (length_header.isascii() and length_header.isdigit()):
            self.close_connection = True
            return _error_response(InvalidRequest("Content-Length must be a whole number."))
        if len(length_header) > 18 or int(length_header) > MAX_BODY_BYTES:
            self.close_connection = True  # the unread body must not be parsed as a next request
            return _error_response(PayloadTooLarge(_PROTOCOL_ERRORS[413][1]))
        length = int(length_header)
        body = self.rfile.read(length) if length else b""
        self._request_consumed = True
        if len(body) < length:
            self.close_connection = True
            return _error_response(InvalidRequest(f"The body ended after {len(body)} of {length} bytes."))
        problems = _header_problems(headers) + _query_problems(query)
        if problems:
            return _error_response(InvalidRequest("The request holds text that cannot be used.", details=problems))
        return Request(
            method=self.command, path=split.path, query=query, headers=headers, body=body, registry=self.registry
        )

    def parse_request(self) -> bool:
        self._request_consumed = False
        try:
            parsed = super().parse_request()
        except TimeoutError:
            self.send_error(408)
            return False
        if parsed and self.request_version == "HTTP/0.9":
            # "GET /path" alone: an HTTP/0.9 answer would be a bare body, no status, no headers.
            self.send_error(400)
            return False
        return parsed

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Every refusal the stdlib makes (bad request line, oversized headers, unknown method) as JSON.

        The stdlib's own messages quote the request line, which may carry a
        token in its query string: they are not used.
        """
        status = int(code)
        headers = {"Connection": "close"}
        if status in _CLIENT_ERROR_FOR:
            status, error, text = _CLIENT_ERROR_FOR[status]
            if status == 405:
                allow = ", ".join(sorted(self.routes))
                headers["Allow"] = allow
                text = f"This method is not served here; use {allow}."
        else:
            error, text = _PROTOCOL_ERRORS.get(status, ("invalid_request", "The request is malformed."))
        # One JSON line per refusal: its status and code, never the request line.
        log("http.protocol_error", "warning", status=status, error=error)
        if self.request_version in ("", "HTTP/0.9"):
            self.request_version = "HTTP/1.0"  # so a status line and headers are written
        self.close_connection = True
        with contextlib.suppress(OSError):  # the client may already be gone
            self._send(Response(status=status, body={"error": error, "message": text}, headers=headers))

    def finish(self) -> None:
        super().finish()
        if not getattr(self, "_request_consumed", False):
            _linger(self.connection)

    def _send(self, response: Response) -> None:
        try:
            self._write(response)
        except (BrokenPipeError, ConnectionResetError):
            # The caller hung up before the answer (a kick, pg_net after its
            # timeout): the work is done and recorded; only the answer is lost.
            self.close_connection = True
            log("http.caller_gone", path=self.path.partition("?")[0], status=response.status)

    def _write(self, response: Response) -> None:
        payload = json.dumps(response.body, default=str, separators=(",", ":")).encode()
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-store")
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        self.wfile.flush()

    def version_string(self) -> str:
        """`Server: job-queue`; the stdlib appends " " + sys_version, a trailing space when that is empty."""
        return self.server_version

    # Vercel's bridge (vercel-runtime's vc_init.py) serves `class Handler(BaseHandler, handler)`,
    # whose log_message prints an access-log line to stdout; so the access log is
    # silenced where it starts (log_request), before the MRO reaches log_message.
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """No access-log line: requests are logged as JSON by the endpoints."""

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """A protocol error the stdlib reports (bad request line, timeout), as one of our JSON lines."""
        log("http.protocol_error", "warning", message=format % args)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silence the stdlib's stderr access log; requests are logged as JSON by the endpoints."""

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _serve
