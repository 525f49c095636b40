'''The HTTP layer every `api/` file shares.

Vercel's Python runtime serves an api file's `handler` class (a
`BaseHTTPRequestHandler`) and answers 501 for any method the class lacks. An api
file therefore builds its class here from a method → endpoint map:

    class handler(vercel_handler(GET=run_jobs, POST=run_jobs)):  # noqa: N801
        """The worker's one entry point."""

and gets request parsing, the 64 KiB body limit, JSON responses, the error shape
`{"error", "message", "details"?}`, 405 for methods it does not serve, and a 500
(logged and sent to Sentry) only for bugs.

The form is the builder's, not ours: `@vercel/python` reads the file's syntax
tree (it does not import it) and accepts a top-level `class handler(...)`, or an
`app`/`application` it would then serve as WSGI/ASGI; an assignment
`handler = vercel_handler(...)` is refused. So an api file never defines a
top-level `app` or `application` either.
'''

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar, NamedTuple, TypeVar
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, ValidationError

from lib.errors import (
    ApiError,
    ConfigurationError,
    DatabaseUnavailable,
    InvalidJson,
    InvalidRequest,
    MethodNotAllowed,
    PayloadTooLarge,
    ServerMisconfigured,
)
from lib.observability import capture_bug, flush_sentry, init_sentry, log, log_exception
from lib.settings import get_settings

MAX_BODY_BYTES = 64 * 1024
SERVED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD")

ModelT = TypeVar("ModelT", bound=BaseModel)


class Request(NamedTuple):
    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: Mapping[str, str]  # lower-cased names
    body: bytes

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
            data = json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidJson(f"The body is not valid JSON: {exc}.") from None
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


Endpoint = Callable[[Request], Response]


def _details(exc: ValidationError, source: str) -> list[dict[str, Any]]:
    details = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(part) for part in error["loc"])
        details.append({"field": loc or source, "message": error["msg"], "type": error["type"]})
    return details


def _validate(model: type[ModelT], data: dict[str, str] | bytes, *, source: str) -> ModelT:
    try:
        if isinstance(data, bytes):
            return model.model_validate_json(data, strict=True)
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest("The request has invalid fields.", details=_details(exc, source)) from None


def _error_response(exc: ApiError) -> Response:
    return Response(status=exc.status, body=exc.body())


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
            if isinstance(exc, DatabaseUnavailable):
                capture_bug(exc.__cause__ or exc, path=request.path, outage="database")
        return response
    except ConfigurationError as exc:
        log("http.misconfigured", "error", path=request.path, error=str(exc))
        return _error_response(ServerMisconfigured(str(exc)))
    except Exception as exc:  # noqa: BLE001 - the last line of defence: a bug
        log_exception("http.bug", exc, path=request.path, method=request.method)
        capture_bug(exc, path=request.path)
        return Response(
            status=500,
            body={"error": "internal_error", "message": "An unexpected error occurred; it has been reported."},
        )
    finally:
        flush_sentry()


def vercel_handler(**routes: Endpoint) -> type[BaseHTTPRequestHandler]:
    """The base of the `handler` class Vercel serves, from a method → endpoint map."""
    unknown = set(routes) - set(SERVED_METHODS)
    if unknown:
        raise ValueError(f"unsupported HTTP methods: {sorted(unknown)}")

    class Handler(_Handler):
        pass

    Handler.routes = dict(routes)
    return Handler


class _Handler(BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, Endpoint]] = {}
    server_version = "job-queue"
    sys_version = ""

    def _serve(self) -> None:
        request_or_error = self._read_request()
        if isinstance(request_or_error, Response):
            response = request_or_error
        else:
            response = dispatch(self.routes, request_or_error)
        self._send(response)

    def _read_request(self) -> Request | Response:
        split = urlsplit(self.path)
        try:
            query = tuple(parse_qsl(split.query, keep_blank_values=True, strict_parsing=False))
        except ValueError:
            return _error_response(InvalidRequest("The query string is malformed."))
        headers = {k.lower(): v for k, v in self.headers.items()}
        length_header = headers.get("content-length", "0").strip() or "0"
        if not length_header.isdigit():
            return _error_response(InvalidRequest("Content-Length must be a whole number."))
        length = int(length_header)
        if length > MAX_BODY_BYTES:
            self.close_connection = True  # the unread body must not be parsed as a next request
            return _error_response(PayloadTooLarge(f"The body may be at most {MAX_BODY_BYTES} bytes."))
        body = self.rfile.read(length) if length else b""
        return Request(method=self.command, path=split.path, query=query, headers=headers, body=body)

    def _send(self, response: Response) -> None:
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

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silence the stdlib's stderr access log; requests are logged as JSON by the endpoints."""

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _serve
