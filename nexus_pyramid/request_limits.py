"""Request limits: how much of a body is read, which content types are parsed, what JSON is accepted.

One tween, below the exception views so that its errors become the API envelope (or a
console page under /admin), checks every request before any view reads its body:

- a ``Content-Length`` above ``nexus.max_body_size`` is refused at once (413), unread;
- a body without ``Content-Length`` (chunked) is read up to the limit + 1 byte and refused
  past it, else handed on as a plain body of known length;
- a ``Content-Type`` naming a charset that does not exist, a form (urlencoded or multipart)
  naming a charset other than UTF-8, or a multipart type without a valid boundary, is refused
  (415) before WebOb's form parser trips over it, and so is a body sent to the API with no
  ``Content-Type`` at all (the contract: JSON, and nothing else);
- a body sent with a ``Content-Encoding`` (gzip, say) is refused (415, as RFC 9110 says for a
  coding the server does not apply): it was read as if it were not encoded;
- a path whose percent-decoded bytes are not UTF-8 is refused (400) before anything reads
  it as text (``mend_path``, called by the outermost tween, keeps the path readable until
  then); such a query string is a 400 when its parameters are read (``NexusRequest``).

``request.json_body`` (what Cornice's validators read) is replaced by a parser that wants
UTF-8, refuses NaN/Infinity, unpaired surrogates and nesting deeper than
``nexus.json_max_depth``, and answers every failure with a 4xx envelope. The body size
limit bounds the JSON size.

The production server (``server.py``) enforces the same size limit while it buffers the
request, before the application sees it; this tween is what holds for every other server
(development, tests) and for the console's forms.
"""
from __future__ import annotations

import codecs
import io
import json
import re

from pyramid.request import Request
from pyramid.tweens import EXCVIEW

from . import errors
from . import settings as nexus_settings
from .cors import API_PREFIX

DEFAULT_MAX_BODY_SIZE = nexus_settings.DEFAULTS["nexus.max_body_size"]
_READ_CHUNK = 64 * 1024
# RFC 2046 boundary: 1 to 70 characters, not ending in a space.
_BOUNDARY = re.compile(r"^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$")
_METHODS_WITHOUT_BODY = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# The bodies WebOb parses as forms (``request.POST``).
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class PayloadTooLarge(errors.AppError):
    status = 413
    code = "PAYLOAD_TOO_LARGE"
    message = "The request body is too large."


class UnsupportedMediaType(errors.AppError):
    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"
    message = "Request bodies must be application/json."


def max_body_size(settings) -> int:
    """``nexus.max_body_size`` (its bounds are checked at start-up by nexus_pyramid.settings)."""
    return nexus_settings.value(settings, "nexus.max_body_size")


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body is larger than {limit} bytes.", {"max_bytes": limit})


# -- the tween ------------------------------------------------------------------------
# Uploads (multipart) with a limit of their own: the file's limit plus room for the form's framing.
UPLOAD_PATHS = ("/api/user/imports",)
MULTIPART_OVERHEAD = 64 * 1024


def upload_limit(settings) -> int:
    return nexus_settings.value(settings, "imports.max_size") + MULTIPART_OVERHEAD



def body_limits_tween_factory(handler, registry):
    limit = max_body_size(registry.settings)
    uploads = upload_limit(registry.settings)

    def tween(request):
        environ = request.environ
        check_path_text(environ)
        check_body_size(environ, uploads if request.path in UPLOAD_PATHS else limit)
        if request.method not in _METHODS_WITHOUT_BODY:
            content_type = environ.get("CONTENT_TYPE", "")
            if not content_type.strip() and request.content_length and request.path_info.startswith(API_PREFIX):
                raise UnsupportedMediaType(details={"Content-Type": ["Missing: must be application/json"]})
            kind, params = check_content_type(content_type)
            check_content_encoding(environ.get("HTTP_CONTENT_ENCODING", ""))
            if kind.startswith("multipart/"):
                check_multipart_parts(request, params["boundary"])
        return handler(request)

    return tween


# -- text in the URL ------------------------------------------------------------------
UNDECODABLE_PATH = "nexus.undecodable_path"


def mend_path(environ: dict) -> None:
    """A path whose bytes are not UTF-8 (``/api/movies/%FF``) cannot be read as text: WebOb's
    ``path_info`` raises in every tween, view predicate and log line that reads it, and the
    server answered a bare 500. The path is replaced by its decoding with U+FFFD for each
    byte that does not decode, and the request marked for ``check_path_text`` to refuse."""
    path = environ.get("PATH_INFO", "")
    if path.isascii():
        return
    raw = path.encode("latin-1", "replace")  # WSGI: each byte of the path as one character
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        environ[UNDECODABLE_PATH] = True
        environ["PATH_INFO"] = raw.decode("utf-8", "replace").encode("utf-8").decode("latin-1")


def check_path_text(environ: dict) -> None:
    """400 for a path that ``mend_path`` found not to be UTF-8."""
    if environ.get(UNDECODABLE_PATH):
        raise errors.ValidationError("The request path is not valid UTF-8.",
                                     {"path": ["Not valid UTF-8 once percent-decoded"]})


class NexusRequest(Request):
    """The app's request: a query string that is not UTF-8 once percent-decoded is a 400 when
    something reads its parameters (WebOb raises ``UnicodeDecodeError`` there, a 500).
    Read lazily, as WebOb does: a route that reads no parameters (``/healthz``) is not refused."""

    @property
    def GET(self):
        try:
            return super().GET
        except UnicodeDecodeError:
            raise errors.ValidationError("The query string is not valid UTF-8.",
                                         {"query": ["Not valid UTF-8 once percent-decoded"]}) from None


def check_body_size(environ: dict, limit: int) -> None:
    declared = (environ.get("CONTENT_LENGTH") or "").strip()
    if declared:
        if not (declared.isascii() and declared.isdigit()):
            raise errors.ValidationError("The Content-Length header is not valid.",
                                         {"Content-Length": ["Must be a number of bytes"]})
        if int(declared) > limit:
            raise too_large(limit)
        return
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    if not (chunked or environ.get("wsgi.input_terminated")):
        return  # no Content-Length and no way to find the end: WSGI says there is no body
    # Read at most limit + 1 bytes: enough to know it is too large, never more.
    stream, parts, received = environ["wsgi.input"], [], 0
    while received <= limit:
        part = stream.read(min(_READ_CHUNK, limit + 1 - received))
        if not part:
            break
        parts.append(part)
        received += len(part)
    if received > limit:
        raise too_large(limit)
    body = b"".join(parts)
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    environ["webob.is_body_seekable"] = True


def _media_type(header: str) -> tuple[str, dict[str, str]]:
    kind, _, rest = header.partition(";")
    params = {}
    for item in rest.split(";"):
        name, sep, value = item.partition("=")
        if sep:
            params.setdefault(name.strip().lower(), value.strip().strip('"'))
    return kind.strip().lower(), params


def check_content_type(header: str) -> tuple[str, dict]:
    """The media type and its parameters, once they are found to be readable."""
    if not header:
        return "", {}
    kind, params = _media_type(header)
    charset = params.get("charset")
    if charset is not None:
        try:
            codecs.lookup(charset)
        except LookupError:
            raise UnsupportedMediaType(f"Unknown charset {charset[:40]!r} in Content-Type.",
                                       {"Content-Type": ["Unknown charset"]})
    if kind in FORM_TYPES and charset is not None and not _webob_reads_as_utf8(charset):
        # WebOb's form parser raises (DeprecationWarning, a 500) on any other charset, UTF-16 or
        # Latin-1 alike, whoever reads request.POST: refused here, as JSON's are (parse_json_body).
        raise UnsupportedMediaType("Form bodies must be UTF-8.", {"Content-Type": ["Charset must be utf-8"]})
    if kind.startswith("multipart/") and not _BOUNDARY.match(params.get("boundary", "")):
        raise UnsupportedMediaType(f"{kind[:60]} needs a valid boundary parameter.",
                                   {"Content-Type": ["Missing or invalid multipart boundary"]})
    return kind, params


MAX_MULTIPART_PARTS = 16


def check_multipart_parts(request, boundary: str) -> None:
    """At most ``MAX_MULTIPART_PARTS`` parts, counted before WebOb parses any (400).

    WebOb's multipart parser (the standard library's cgi) costs tens of microseconds per part:
    an import body of 5 MiB in tiny parts held a request thread for seconds of CPU. No form
    here has more than a few fields. Counting the delimiters is one pass over a body that is
    already bounded by the size limit."""
    delimiters = request.body.count(b"--" + boundary.encode("latin-1"))
    if delimiters - 1 > MAX_MULTIPART_PARTS:
        raise errors.ValidationError(f"A multipart body may have at most {MAX_MULTIPART_PARTS} parts.",
                                     {"body": [f"{delimiters - 1} parts"]})


def _webob_reads_as_utf8(charset: str) -> bool:
    """Does WebOb's form parser take ``charset`` for UTF-8? It knows the spellings utf-8 and
    utf8 in any case, not the other names Python has for it (utf_8, u8): those it refuses too."""
    return charset.strip().lower().replace("-", "") == "utf8"


def check_content_encoding(header: str) -> None:
    """No coding of a request body is applied here: one that names any is refused, not
    read as if it had none (``identity`` is no coding)."""
    codings = [c.strip().lower() for c in header.split(",") if c.strip()]
    if any(c != "identity" for c in codings):
        raise UnsupportedMediaType("Request bodies must not be compressed or otherwise encoded.",
                                   {"Content-Encoding": [f"Not supported: {header.strip()[:40]}"]})


# -- JSON bodies ----------------------------------------------------------------------
def _invalid_json(problem: str = "Malformed JSON.", message: str = "The request body is not valid JSON."):
    return errors.ValidationError(message, {"body": [problem]})


def _reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def _check_structure(value, max_depth: int) -> None:
    """Depth and text checks over the parsed value, without recursion."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > max_depth:
                raise _invalid_json(f"Nested deeper than {max_depth} levels.")
            children = item.items() if isinstance(item, dict) else ((None, child) for child in item)
            for key, child in children:
                if key is not None:
                    _check_text(key)
                stack.append((child, depth + 1))
        elif isinstance(item, str):
            _check_text(item)


def _check_text(text: str) -> None:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise _invalid_json("Contains an unpaired UTF-16 surrogate escape.")


def parse_json_body(request):
    """``request.json_body``: the body as JSON, or a 4xx ``AppError``."""
    charset = _media_type(request.environ.get("CONTENT_TYPE", ""))[1].get("charset")
    if charset is not None:
        try:
            utf8 = codecs.lookup(charset).name == "utf-8"
        except LookupError:
            utf8 = False
        if not utf8:
            raise UnsupportedMediaType("JSON bodies must be UTF-8.", {"Content-Type": ["Charset must be utf-8"]})
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid_json("Not valid UTF-8.", "The request body is not valid UTF-8.")
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise _invalid_json(f"Nested deeper than {request.registry.settings['nexus.json_max_depth']} levels.")
    except ValueError:
        raise _invalid_json()
    _check_structure(value, int(request.registry.settings["nexus.json_max_depth"]))
    return value


def includeme(config):
    config.set_request_factory(NexusRequest)
    # Below the exception views: what this raises is rendered like any other error.
    config.add_tween("nexus_pyramid.request_limits.body_limits_tween_factory", under=EXCVIEW)
    config.add_request_method(parse_json_body, "json_body", reify=True)
    config.add_request_method(parse_json_body, "json", reify=True)
