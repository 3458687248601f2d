"""Production server: gunicorn processes, each serving its sockets with waitress.

``use = egg:nexus_pyramid#gunicorn`` in production.ini. The ini gives the defaults;
``WEB_CONCURRENCY`` (workers), ``PORT`` and ``BIND`` override them, as container
platforms expect. That is the one thing this runner adds to gunicorn's own PasteDeploy
runner (``egg:gunicorn#main``), and it cannot be had there: with gunicorn's runner the
ini's ``workers`` and ``bind`` win over ``WEB_CONCURRENCY`` and ``PORT``, and
``GUNICORN_CMD_ARGS`` is not read, so an ini that names them can't be overridden, and one
that leaves them out starts one worker on 127.0.0.1:8000 (checked with gunicorn 23).

The worker model, ``worker_class = nexus_pyramid.server.WaitressWorker``: gunicorn keeps
what it is good at (several processes, so the GIL is not one for all; the arbiter that
restarts dead or stuck workers; graceful reloads and shutdowns; ``max_requests``), and each
worker serves the listening sockets it inherited with waitress. Waitress reads every
request, headers and body, in its asynchronous loop and hands it to a thread only when it
is complete, so a client that sends its body at one byte per second costs a file
descriptor, not a thread. gunicorn's own ``gthread`` worker gives the connection to a
thread as soon as it is readable, and a few dozen slow clients hold every thread.

How gunicorn's settings map: ``threads`` -> waitress threads, ``worker_connections`` ->
waitress ``connection_limit``, ``backlog`` -> ``backlog``, ``timeout`` -> the seconds an
idle or silent connection is kept (``channel_timeout``); the heartbeat comes from the loop
below. The body size limit is the application's own setting (``nexus.max_body_size``),
read from the loaded app, so the server refuses the same bodies before it buffers them,
with the API's error envelope.
"""
from __future__ import annotations

import itertools
import json
import os
import time

from gunicorn.workers.base import Worker
from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import BaseWSGIServer, create_server
from waitress.task import ErrorTask, WSGITask
from waitress.utilities import RequestEntityTooLarge

from .api.cached import REPLAY_ENVIRON_KEY
from .interfaces import ICachedPages
from .memory import rehearse
from .request_limits import DEFAULT_MAX_BODY_SIZE, UPLOAD_PATHS, max_body_size, upload_limit


def serve(app, global_conf, **local_conf):
    from gunicorn.app.pasterapp import serve as gunicorn_serve

    # A dead worker's samples leave the live gauges of /metrics (prometheus_client multiprocess).
    local_conf.setdefault("child_exit", "nexus_pyramid.metrics.child_exit")
    if os.environ.get("WEB_CONCURRENCY"):
        local_conf["workers"] = os.environ["WEB_CONCURRENCY"]
    if os.environ.get("BIND"):
        local_conf["bind"] = os.environ["BIND"]
    elif os.environ.get("PORT"):
        host = local_conf.get("bind", "0.0.0.0:6543").rsplit(":", 1)[0]
        local_conf["bind"] = f"{host}:{os.environ['PORT']}"
    if getattr(getattr(app, "registry", None), "settings", {}).get("nexus.rehearsal"):
        # The app's first requests, made once here in the master, for the workers to share (memory.py).
        rehearse(app)
    return gunicorn_serve(app, global_conf, **local_conf)


# -- waitress, made to answer in the envelope and to count decoded body bytes -----------------
_CODES = {400: "VALIDATION_ERROR", 413: "PAYLOAD_TOO_LARGE", 431: "HEADERS_TOO_LARGE", 501: "NOT_IMPLEMENTED"}
_MESSAGES = {400: "The request is not valid HTTP.", 413: "The request body is too large.",
             431: "The request headers are too large."}


class EnvelopeErrorTask(ErrorTask):
    """Errors found while reading a request (bad HTTP, too large) in the API's error envelope."""

    def execute(self):
        error = self.request.error
        details = {"max_bytes": self.channel.parser_class.body_limit} if error.code == 413 else {}
        body = json.dumps({"status": "error", "code": _CODES.get(error.code, "INTERNAL_ERROR"),
                           "message": _MESSAGES.get(error.code, f"{error.reason}."), "details": details}).encode()
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class _BodyLimit:
    """Wraps a chunked body receiver: an error once the decoded body passes the limit.

    Its ``error`` is also the receiver's own (a chunk size that is not hex, say): waitress
    reads it here, and a body it could not decode must end the request with a 400 at once,
    not leave the client waiting for the connection's timeout."""

    def __init__(self, receiver, limit: int):
        self.receiver, self.limit, self.too_large = receiver, limit, None

    @property
    def error(self):
        return self.too_large or self.receiver.error

    def received(self, data):
        consumed = self.receiver.received(data)
        if len(self.receiver) > self.limit:
            self.too_large = RequestEntityTooLarge(f"exceeds {self.limit} bytes")
        return consumed

    def __getattr__(self, name):
        return getattr(self.receiver, name)

    def __len__(self):
        return len(self.receiver)


class LimitedRequestParser(HTTPRequestParser):
    """Refuses a Content-Length above the limit at once; counts chunked bodies once decoded.

    waitress's own ``max_request_body_size`` counts raw bytes, chunk framing included, and
    refuses a body of exactly the limit; it is kept only as a loose bound on the framing.
    The wrapped receiver's ``error`` ends the request (waitress checks it after each read).
    """

    body_limit = DEFAULT_MAX_BODY_SIZE
    upload_limit = DEFAULT_MAX_BODY_SIZE  # the upload routes' (request_limits.UPLOAD_PATHS)

    def parse_header(self, header_plus):
        super().parse_header(header_plus)
        limit = self.upload_limit if self.path in UPLOAD_PATHS else self.body_limit
        if self.chunked:
            self.body_rcv = _BodyLimit(self.body_rcv, limit)
        elif self.content_length > limit:
            self.error = RequestEntityTooLarge(f"exceeds {limit} bytes")
            self.completed = True


def make_channel_class(body_limit: int, upload_limit: int | None = None):
    parser = type("LimitedRequestParser", (LimitedRequestParser,),
                  {"body_limit": body_limit, "upload_limit": upload_limit or body_limit})
    return type("NexusChannel", (HTTPChannel,), {"parser_class": parser, "error_task_class": EnvelopeErrorTask,
                                                 "task_class": NexusTask})


class _SignalWakeup(wasyncore.file_dispatcher):
    """Drains gunicorn's signal wake-up pipe, so that a signal ends the loop's wait at once."""

    def writable(self):
        return False

    def handle_read(self):
        try:
            self.recv(4096)
        except OSError:
            pass


class NexusTask(WSGITask):
    """waitress's WSGI task, with two changes.

    - The app gets the replay the event loop found for this request (``InlineLane``).
    - A bodiless answer (``304 Not Modified``, ``204``) keeps an HTTP/1.1 connection open.
      waitress closes the connection after any response without ``Content-Length``, and
      RFC 9110 forbids a body (and, for 204, the header) there, so every conditional request
      answered 304 cost its client a new connection. The end of a bodiless response is its
      header block: the connection can carry the next request.
    """

    _keep_bodiless = False

    def get_environment(self):
        environ = super().get_environment()
        replay = getattr(self.request, "replay", None)
        if replay is not None:
            environ[REPLAY_ENVIRON_KEY] = replay
        return environ

    def build_response_header(self):
        asked_to_close = self.request.headers.get("CONNECTION", "").lower() == "close"
        self._keep_bodiless = (self.version == "1.1" and not self.has_body and not asked_to_close
                               and not self.close_on_finish)
        try:
            return super().build_response_header()
        finally:
            self._keep_bodiless = False

    def set_close_on_finish(self) -> None:
        if self._keep_bodiless:
            return  # the only close waitress asks for here is for want of a Content-Length
        super().set_close_on_finish()


class InlineLane:
    """Requests the event loop answers itself, never queued behind busy threads.

    - Liveness probes (``GET /healthz``): when every thread is taken (requests waiting on a
      hung database, say, until their timeouts end them), a probe queued behind them would say
      the process is not alive when it is. ``/healthz`` touches no dependency.
    - Replays of cached movie responses (api/cached.py ``CachedPages``): the same page asked
      again while its cache entry is unchanged. Finding one is a few look-ups that never wait;
      answering it writes bytes already made. So the pages stay up, at the cost of a probe,
      while the threads wait on TMDb or the database.

    A channel whose pending requests are all of these is served by the loop's own thread,
    right after the read that completed them (never from inside the read: the channel's lock
    is held there), with each replay handed to the app (``NexusTask``): found and answered
    microseconds apart. Anything else goes to the thread pool, replays forgotten.
    """

    PROBE = "/healthz"

    def __init__(self, pages=None):
        self.pages = pages  # api.cached.CachedPages, None: probes only
        self.pending: list = []

    def answer_now(self, request):
        """True for a probe, the replay for a page answered again, None for the thread pool."""
        if request.error or request.command != "GET":
            return None
        # The path as the WSGI environ will have it (waitress's WSGITask.get_environment).
        path = "/" + request.path.lstrip("/") if request.path.startswith("/") else request.path
        if path == self.PROBE:
            return True
        if self.pages is None:
            return None
        headers = request.headers
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": request.query,
                   "CONTENT_LENGTH": headers.get("CONTENT_LENGTH", "")}
        environ.update(("HTTP_" + name, value) for name, value in headers.items()
                       if name not in ("CONTENT_LENGTH", "CONTENT_TYPE"))
        return self.pages.find_for(environ)

    def route(self, listener) -> None:
        dispatch = listener.add_task

        def add_task(channel):
            requests = list(channel.requests)
            answers = [self.answer_now(r) for r in requests]
            if requests and all(answer is not None for answer in answers):
                for request, answer in zip(requests, answers):
                    if answer is not True:
                        request.replay = answer
                self.pending.append(channel)
            else:
                dispatch(channel)

        listener.add_task = add_task

    def serve(self) -> None:
        while self.pending:
            self.pending.pop(0).service()


def pool_shortfall(settings, threads: int) -> str | None:
    """A warning when the database pool keeps fewer connections than the worker has threads.

    The connections above ``sqlalchemy.pool_size`` are overflow: opened when a request needs
    one and closed when it gives it back. With more threads than kept connections, a busy
    worker opens and closes PostgreSQL connections all the time (a backend process each)."""
    kept = settings.get("sqlalchemy.pool_size")
    url = str(settings.get("sqlalchemy.url", ""))
    if not isinstance(kept, int) or not url.startswith("postgresql") or kept >= threads:
        return None
    return (f"sqlalchemy.pool_size = {kept} is below threads = {threads}: under load this worker opens and "
            f"closes database connections per request; set sqlalchemy.pool_size to at least {threads}")


class WaitressWorker(Worker):
    """A gunicorn worker whose HTTP server is waitress (see the module's docstring)."""

    def run(self):
        settings = getattr(getattr(self.wsgi, "registry", None), "settings", None) or {}
        from . import freeze_worker

        freeze_worker(settings)
        shortfall = pool_shortfall(settings, self.cfg.threads)
        if shortfall:
            self.log.warning(shortfall)
        body_limit = max_body_size(settings)
        uploads = upload_limit(settings)
        counter = itertools.count(1)
        application = self.wsgi

        def counted(environ, start_response):
            self.nr = next(counter)
            return application(environ, start_response)

        self.socket_map: dict = {}
        server = create_server(
            counted, map=self.socket_map, sockets=[listener.sock for listener in self.sockets],
            threads=self.cfg.threads, connection_limit=self.cfg.worker_connections, backlog=self.cfg.backlog,
            # gunicorn's timeout = 0 means no heartbeat limit; connections then get waitress's 120 s.
            channel_timeout=self.cfg.timeout if self.cfg.timeout > 0 else 120,
            cleanup_interval=min(self.cfg.timeout, 30) if self.cfg.timeout > 0 else 30,
            # Raw bytes, chunk framing included: the exact limit is the parser's (decoded bytes).
            max_request_body_size=2 * max(body_limit, uploads) + 64 * 1024,
            # Bodies above this wait in a temporary file, not in memory.
            inbuf_overflow=64 * 1024, ident="", asyncore_use_poll=True,
            # X-Forwarded-* reach the app untouched, as with gunicorn: the app decides which
            # peers it trusts (waitress would otherwise delete them for every peer).
            clear_untrusted_proxy_headers=False,
        )
        channel_class = make_channel_class(body_limit, uploads)
        self.servers = [d for d in self.socket_map.values() if isinstance(d, BaseWSGIServer)]
        self.inline = InlineLane(self.wsgi.registry.queryUtility(ICachedPages)
                                 if hasattr(self.wsgi, "registry") else None)
        for listener in self.servers:
            listener.channel_class = channel_class
            self.inline.route(listener)
        _SignalWakeup(self.PIPE[0], map=self.socket_map)
        try:
            while self.alive:
                self.notify()
                wasyncore.loop(timeout=1.0, map=self.socket_map, use_poll=True, count=1)
                self.inline.serve()
                if self.nr >= self.max_requests:
                    self.log.info("Autorestarting worker after current request.")
                    self.alive = False
                if self.ppid != os.getppid():
                    self.log.info("Parent changed, shutting down: %s", self)
                    self.alive = False
            self.finish_in_flight()
        finally:
            server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
            wasyncore.close_all(self.socket_map)

    def finish_in_flight(self):
        """Stop accepting; answer what was received or is arriving; then close the connections.

        A connection with a request, or output still to send, is waited for until
        ``graceful_timeout``; one still receiving a request gets a few seconds to complete it;
        one just opened or just answered gets a second to send its next request (the client
        may have connected just before the listener closed). Idle ones are closed.
        """
        for listener in self.servers:
            listener.accepting = False
            listener.del_channel()
            listener.socket.close()
        started = time.monotonic()
        deadline = started + max(self.cfg.graceful_timeout - 1, 0)
        receiving_deadline = started + min(5, max(self.cfg.graceful_timeout - 1, 0))
        while time.monotonic() < deadline:
            busy, now, wall = False, time.monotonic(), time.time()
            for channel in list(self.socket_map.values()):
                if not isinstance(channel, HTTPChannel):
                    continue
                if channel.requests or channel.total_outbufs_len:
                    busy = True
                elif channel.request is not None and now < receiving_deadline:
                    busy = True
                elif channel.request is None and wall - channel.last_activity < 1.0:
                    busy = True
                else:
                    channel.will_close = True
            if not busy:
                break
            self.notify()
            wasyncore.loop(timeout=0.2, map=self.socket_map, use_poll=True, count=1)
            self.inline.serve()
