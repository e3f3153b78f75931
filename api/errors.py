"""Every error, on every path and method, as RFC 9457 ``application/problem+json``."""

import contextlib
import http
import logging
import re
import time

import flask_smorest
import gunicorn.util
import orjson
import peewee
from apispec import BasePlugin
from flask import current_app, request
from flask_smorest import abort
from gunicorn.http.errors import NoMoreData, ParseException
from playhouse.pool import MaxConnectionsExceeded
from werkzeug.exceptions import InternalServerError

from models import DatabaseFileGone, drop_connection, is_disk_full
from models.base import StatementTimeout
from models.ingest import WriteError
from schemas.common import ProblemSchema

from .jsonbody import WHOLE_BODY

PROBLEM_JSON = "application/problem+json"
#: Headers of werkzeug's own error response that a problem response keeps (Allow on 405, ...).
_KEPT_HEADERS = ("Allow", "WWW-Authenticate", "Retry-After")
_DETAILS = {
    400: "The request could not be understood.",
    404: "There is nothing at this URL.",
    405: "This URL does not accept that method.",
    413: "The request body is larger than this endpoint accepts.",
    415: "This endpoint takes a body of another content type.",
    422: "Some parameters or fields are invalid; see errors.",
    500: "An unexpected error occurred. It has been logged.",
    507: "The database's disk is full: nothing can be written until space is freed. Reads work.",
    503: "The service is unavailable for a moment; try again shortly.",
}
#: Where :class:`api.deadline.Deadline` leaves a request's deadline in the WSGI environ:
#: ``(time.monotonic() past which it is refused, its seconds)``.
DEADLINE = "newsdesk.deadline"

log = logging.getLogger(__name__)


def problem(status, detail=None, errors=None, headers=None):
    """A problem+json response for ``status``."""
    phrase = http.HTTPStatus(status).phrase
    body = {
        "type": "about:blank",
        "title": phrase,
        "status": status,
        "detail": detail or _DETAILS.get(status, phrase + "."),
    }
    if errors:
        body["errors"] = errors
    return current_app.response_class(
        orjson.dumps(body), status=status, mimetype=PROBLEM_JSON, headers=headers
    )


class WorkerTimeout(Exception):
    """Raised by gunicorn's ``worker_abort`` hook (``gunicorn.conf.py``) in a request that ran
    past the worker timeout: the request ends with a 503 problem, then the worker exits."""

    def __init__(self, seconds):
        super().__init__(f"past gunicorn's worker timeout of {seconds} s")
        self.seconds = seconds


def problem_body(status, title, detail=None):
    """The bytes of a problem+json body, for answers made outside Flask (:func:`problem` is
    Flask's)."""
    document = {"type": "about:blank", "title": title, "status": status}
    if detail is not None:
        document["detail"] = detail
    return orjson.dumps(document)


def write_unreadable_request_error(sock, status_int, reason, mesg):
    """gunicorn's answer to a request it cannot read (a malformed request line or header, raw
    UTF-8 in a URL as curl sends what is typed, too many headers), as problem+json: gunicorn's
    own is an HTML page, and the contract says problem+json whatever the input.
    ``gunicorn.conf.py`` puts it in place of ``gunicorn.util.write_error``, with which gunicorn
    writes those pages (the signature is that function's); tests/test_server.py checks it."""
    with contextlib.suppress(ValueError):  # gunicorn's 501 said "Bad Request"
        reason = http.HTTPStatus(status_int).phrase
    body = problem_body(status_int, reason, _unreadable_detail(mesg)[:500])
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        f"Content-Type: {PROBLEM_JSON}\r\n"
        "Cache-Control: no-store\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    gunicorn.util.write_nonblock(sock, head.encode("latin-1") + body)


def _unreadable_detail(mesg):
    """gunicorn's message about a request it cannot read, with the request's bytes it quotes
    as the UTF-8 they are (gunicorn decodes them as Latin-1: ``café`` read ``cafÃ©``), and
    what to do about a URL that is not ASCII or a header's name."""
    # gunicorn quotes with repr, which escapes the bytes 0x80-0x9f (as in the UTF-8 of É):
    # those back as the characters they stand for first.
    mesg = re.sub(r"(?<!\\)\\x([89][0-9a-f])", lambda m: chr(int(m.group(1), 16)), mesg)
    with contextlib.suppress(UnicodeError):  # bytes not UTF-8 either: as gunicorn read them
        mesg = mesg.encode("latin-1").decode("utf-8")
    if "Invalid HTTP request line" in mesg and not mesg.isascii():
        advice = "A URL holds ASCII alone: percent-encode the rest (curl -G --data-urlencode)."
    elif "Invalid HTTP header name" in mesg:
        advice = "A header's name holds ASCII letters, digits and !#$%&'*+-.^_`|~ alone."
    else:
        return mesg
    return f"{mesg}. {advice}"


#: Where the app keeps the monotonic time of its last write refused for a full disk (for
#: /readyz), in ``app.extensions["newsdesk"]``.
DISK_FULL_AT = "disk_full_at"


def too_slow(seconds):
    """The answer to a request that outlived its deadline of ``seconds``."""
    return problem(
        503,
        f"The request took longer than {seconds} s; try again later.",
        headers={"Retry-After": "5"},
    )


def named(errors):
    """The fields of a problem's ``errors``, in words: ``title, tags.1``; "the body" for the
    whole of it."""
    return ", ".join("the body" if name == WHOLE_BODY else name for name in sorted(errors))


def flatten_messages(messages, prefix="", query=False):
    """webargs/marshmallow messages as ``{"name": [messages]}``, one key per bad input.

    The location level (``query``, ``json``) is dropped; nested fields are joined with dots
    (``tags.1``: the second tag of a body); a query parameter's items are its own (``facets``,
    not ``facets.1``: the name is the parameter's); what concerns the whole body
    (marshmallow's ``_schema``: not an object, say) is ``$`` (:data:`jsonbody.WHOLE_BODY`).
    """
    flat = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            if not prefix and key in ("query", "json", "path", "headers", "form", "files"):
                name, query = "", key == "query"
            elif key == "_schema" or (query and isinstance(key, int)):
                name = prefix
            else:
                name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, dict):
                flat.update(flatten_messages(value, name, query))
            else:
                flat.setdefault(name or WHOLE_BODY, []).extend(
                    value if isinstance(value, list) else [str(value)]
                )
    else:
        flat[prefix or WHOLE_BODY] = messages if isinstance(messages, list) else [str(messages)]
    return flat


def bad_request(field, message, status=400):
    """Abort with a problem naming one bad parameter or field."""
    abort(status, message=message, errors={field: [message]})


class Api(flask_smorest.Api):
    """flask-smorest's Api, answering every HTTPException as problem+json (its documented
    ``ERROR_SCHEMA`` and ``handle_http_exception``)."""

    ERROR_SCHEMA = ProblemSchema

    def handle_http_exception(self, error):
        """Turn any HTTPException (and unexpected failures, as 500) into problem+json."""
        if isinstance(error, InternalServerError) and error.original_exception is not None:
            # Flask has logged the traceback; the client learns nothing of the internals.
            return problem(500)
        headers = {
            name: value
            for name, value in error.get_response().headers.items()
            if name in _KEPT_HEADERS
        }
        data = getattr(error, "data", None) or {}
        headers.update(data.get("headers") or {})
        errors = data.get("errors")
        if errors is None and "messages" in data:
            errors = flatten_messages(data["messages"])
        detail = data.get("message")
        if detail is None and error.code == 422 and errors:
            detail = f"Invalid: {named(errors)}."
        if detail is None and error.code == 400 and errors:
            detail = f"Bad request: {named(errors)}."
        if detail is None and error.code not in _DETAILS:
            detail = error.description
        return problem(error.code, detail, errors, headers)


#: The response headers the API sends, documented once (components) and referenced.
HEADERS = {
    "ETag": "The answer's validator: send it back as If-None-Match (reads) or If-Match (writes)",
    "Link": '`<URL of the next page>; rel="next"`, when there is a next page',
    "Location": "The URL of what was created",
    "RateLimit-Limit": "Requests allowed in the window of the limit nearest exhaustion",
    "RateLimit-Remaining": "Requests left in that window",
    "RateLimit-Reset": "Seconds until that window resets",
    "Retry-After": "Seconds to wait before trying again",
    "WWW-Authenticate": "How to authenticate (a Bearer key)",
}
#: What each error answer carries besides its problem: 401 says how to authenticate, 429 and
#: 503 when to try again.
ERROR_HEADERS = {
    "UNAUTHORIZED": ["WWW-Authenticate"],
    "TOO_MANY_REQUESTS": [
        "Retry-After",
        "RateLimit-Limit",
        "RateLimit-Remaining",
        "RateLimit-Reset",
    ],
    "SERVICE_UNAVAILABLE": ["Retry-After"],
}


def _header_refs(names):
    return {name: {"$ref": f"#/components/headers/{name}"} for name in names}


def document_problems(spec):
    """Document every error answer as problem+json: the response components flask-smorest
    references (``NOT_FOUND``, ...) registered again, lazily, with that content type; and the
    response headers (:data:`HEADERS`)."""
    for name, description in HEADERS.items():
        spec.components.header(name, {"description": description, "schema": {"type": "string"}})
    for status in http.HTTPStatus:
        if status >= 400:
            response = _problem_response(status.phrase)
            if status.name in ERROR_HEADERS:
                response["headers"] = _header_refs(ERROR_HEADERS[status.name])
            spec.components.response(status.name, response, lazy=True)
    spec.components.response(
        "DEFAULT_ERROR", _problem_response("Default error response"), lazy=True
    )
    spec.components.response(
        "NOT_MODIFIED",
        {"description": "Not Modified: the validator sent (If-None-Match) still matches."},
        lazy=True,
    )


#: The writes that answer with the ETag of what they wrote: an article, a source, a comment,
#: a webhook.
WRITES_WITH_ETAG = re.compile(
    r"^/v1/(articles(/\{key\})?|articles/\{key\}/comments|sources(/\{slug\})?"
    r"|comments/\{comment_id\}|webhooks(/\{webhook_id\}(/rotate-secret)?)?)$"
)


class CommonAnswers(BasePlugin):
    """apispec plugin: what the request pipeline may answer on any operation of the API,
    whatever the view (``create_app`` lists that pipeline), documented on each: 400 (a URL the
    guards refuse, a parameter given twice), 414 and 431 (a URL or headers too long), 401 (an
    unknown key; any read, when reads are private), 429 (a rate limit spent), on reads 304 (a validator still matches), 412 (an
    If-Match that no longer holds) and a key taken optionally (``security``: the ways a key is
    sent, as ``api.auth.SECURITY`` lists them), on writes with a JSON body 413 (too large) and
    415 (not ``application/json``). And the headers of its successful answers: the rate limit's
    on each, the ETag of a read (and of a write of an article, source or comment), the Link of
    a paged list and the Location of what a 201 created."""

    def __init__(self, security):
        self.optional_key = [{}, *security]  # {}: no key, public reads

    def operation_helper(self, path=None, operations=None, **kwargs):
        if not path.startswith(("/v1/", "/feeds/")):
            return
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            answers = ["BAD_REQUEST", "UNAUTHORIZED", "TOO_MANY_REQUESTS"]
            answers += ["REQUEST_URI_TOO_LONG", "REQUEST_HEADER_FIELDS_TOO_LARGE"]  # the guards
            if method in ("get", "head"):
                responses.setdefault(304, "NOT_MODIFIED")
                answers.append("PRECONDITION_FAILED")
                operation.setdefault("security", self.optional_key)
            elif "application/json" in operation.get("requestBody", {}).get("content", {}):
                answers += ["REQUEST_ENTITY_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE"]
            for name in answers:
                responses.setdefault(http.HTTPStatus[name].value, name)
            for status, response in responses.items():
                if isinstance(response, dict) and str(status).startswith("2"):
                    names = self._success_headers(path, method, str(status), operation)
                    response.setdefault("headers", {}).update(_header_refs(names))

    @staticmethod
    def _success_headers(path, method, status, operation):
        names = ["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"]
        if method == "get" or (status in ("200", "201") and WRITES_WITH_ETAG.match(path)):
            names.append("ETag")
        parameters = {parameter.get("name") for parameter in operation.get("parameters", [])}
        if method == "get" and parameters & {"cursor", "since"}:
            names.append("Link")
        if status == "201" or (status == "202" and path == "/v1/import"):
            names.append("Location")
        return names


def _problem_response(description):
    return {"description": description, "content": {PROBLEM_JSON: {"schema": ProblemSchema}}}


def init_app(app):
    """Answer the errors of the write path and of the database as problem+json too."""
    app.register_error_handler(WriteError, _handle_write_error)
    app.register_error_handler(peewee.IntegrityError, _handle_integrity_error)
    app.register_error_handler(peewee.DataError, _handle_data_error)
    app.register_error_handler(peewee.OperationalError, _handle_database_unavailable)
    app.register_error_handler(DatabaseFileGone, _handle_database_file_gone)
    app.register_error_handler(peewee.InterfaceError, _handle_database_unavailable)
    app.register_error_handler(MaxConnectionsExceeded, _handle_pool_exhausted)
    app.register_error_handler(StatementTimeout, _handle_statement_timeout)
    app.register_error_handler(WorkerTimeout, _handle_worker_timeout)
    # What gunicorn's reader of a chunked body raises, read by a view: the client's fault.
    app.register_error_handler(ParseException, _handle_malformed_body)
    app.register_error_handler(NoMoreData, _handle_malformed_body)


def _handle_write_error(error):
    fields = ", ".join(sorted(error.errors))
    if error.status == 409:
        return problem(409, f"Conflicts with stored data: {fields}.", error.errors)
    if error.status == 404:
        return problem(404, "The resource no longer exists.")
    if error.status == 412:
        (message,) = next(iter(error.errors.values()))
        return problem(412, message, error.errors)
    return problem(error.status, f"Invalid: {fields}.", error.errors)


def _handle_data_error(error):
    # A value the schemas let through but a column cannot hold: the client's input, not a fault.
    log.warning("data error: %s", error)
    return problem(400, "A value in the request does not fit what the database can store.")


def _handle_integrity_error(error):
    log.warning("integrity error: %s", error)
    return problem(409, "The request conflicts with data already stored.")


def _handle_database_unavailable(error):
    if is_disk_full(error):
        return disk_full(error)
    deadline = request.environ.get(DEADLINE)
    if deadline is not None and time.monotonic() > deadline[0]:
        # A statement stopped at the request's deadline. SQLite's connection serves on; a
        # PostgreSQL one closed by psycopg2 is left out of the pool when handed back.
        log.warning("deadline: %s", error)
        return too_slow(deadline[1])
    log.error("database unavailable: %s", error, exc_info=error)
    # The connection may be broken (the server restarted): drop it instead of handing it back
    # to the pool, so the next request opens a fresh one and the service recovers by itself.
    with contextlib.suppress(Exception):
        drop_connection()
    return problem(
        503, "The database is unavailable; try again shortly.", headers={"Retry-After": "1"}
    )


def _handle_database_file_gone(error):
    log.error("%s", error)
    return problem(503, str(error), headers={"Retry-After": "60"})


def disk_full(error):
    """The answer to a write the database refused for a full disk: 507 (the connection is fine,
    and keeps serving reads); noted for /readyz."""
    current_app.extensions["newsdesk"][DISK_FULL_AT] = time.monotonic()
    log.error("disk full: %s", error)
    return problem(507, headers={"Retry-After": "60"})


def _handle_worker_timeout(error):
    log.error("worker timeout: %s %s", request.method, request.path)
    return problem(
        503,
        f"The request ran past the server's limit of {error.seconds} s and was stopped;"
        " try again later.",
        headers={"Retry-After": "5"},
    )


def _handle_malformed_body(error):
    return problem(400, f"The request body is malformed: {error}.")


def _handle_pool_exhausted(error):
    log.warning("no database connection free: %s", error)
    return problem(503, "The service is busy; try again shortly.", headers={"Retry-After": "1"})


def _handle_statement_timeout(error):
    # The statement was stopped and the connection is fine: keep it for the next request.
    log.warning("statement timeout: %s", error)
    return problem(
        503,
        f"The search took longer than the {error.milliseconds} ms allowed; try again shortly, "
        "or narrow it (fewer OR alternatives or exclusions, a filter).",
        headers={"Retry-After": "1"},
    )
