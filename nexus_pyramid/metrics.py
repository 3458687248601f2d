"""Prometheus metrics (``GET /metrics``), correct across gunicorn's worker processes.

Off unless ``metrics.enabled``; then protected by ``metrics.token`` (a bearer token) when set.
prometheus_client's multiprocess mode: each process writes its samples to memory-mapped
files in one directory (``metrics.dir``, or ``PROMETHEUS_MULTIPROC_DIR``, or a fresh
temporary one), emptied when the application is built (in gunicorn's master, before the
workers fork); a scrape, answered by whichever worker, sums every process's files. A dead
worker's live gauges are dropped by gunicorn's ``child_exit`` hook (server.py).

Every label value is bounded: route patterns (never raw paths or ids), HTTP methods from a
fixed list, status codes, cache kinds, dependency names, throttle kinds.

The recording functions below are what the rest of the code calls; each does nothing while
metrics are off (one global read).
"""
from __future__ import annotations

import hmac
import logging
import os
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
BREAKER_VALUES = {"closed": 0, "half-open": 1, "half_open": 1, "open": 2}
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _Metrics:
    def __init__(self, multiprocess: bool):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.multiprocess = multiprocess
        # Our own registry: building several apps in one process (tests) never registers twice.
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("nexus_http_requests", "HTTP requests answered, by route pattern, method and status",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("nexus_http_request_duration_seconds", "Time to answer, by route pattern and method",
                                 ["route", "method"], buckets=LATENCY_BUCKETS, registry=r)
        self.cache = Counter("nexus_cache_events", "Movie and recommendation cache lookups by kind and outcome "
                             "(hit, miss, stale, error, busy, bypass)", ["kind", "event"], registry=r)
        self.upstream_calls = Counter("nexus_upstream_calls", "Calls to a dependency by outcome (ok, error)",
                                      ["dependency", "outcome"], registry=r)
        self.upstream_latency = Histogram("nexus_upstream_duration_seconds", "Duration of calls to a dependency",
                                          ["dependency"], buckets=LATENCY_BUCKETS, registry=r)
        self.breaker = Gauge("nexus_breaker_state", "Circuit breaker per dependency: 0 closed, 1 half-open, 2 open "
                             "(the worst of the live processes)", ["dependency"], registry=r,
                             multiprocess_mode="livemax")
        self.pool_in_use = Gauge("nexus_db_pool_in_use", "Database connections checked out, all live processes",
                                 registry=r, multiprocess_mode="livesum")
        self.pool_wait = Histogram("nexus_db_pool_wait_seconds", "Wait for a pooled database connection",
                                   buckets=LATENCY_BUCKETS, registry=r)
        self.pool_timeouts = Counter("nexus_db_pool_timeouts", "Waits for a pooled connection that timed out",
                                     registry=r)
        self.throttled = Counter("nexus_throttled", "Requests refused by a throttle (login, registration)",
                                 ["kind"], registry=r)

    def exposition(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


METRICS: _Metrics | None = None


def prepare_directory(settings: dict) -> str:
    """The multiprocess directory, emptied, named in the environment before prometheus_client reads it."""
    path = settings.get("metrics.dir") or os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(
        prefix="nexus-metrics-")
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):  # a previous server's samples would be summed with ours
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    from prometheus_client import values

    # prometheus_client picks its value class when first imported; it may have been imported
    # before the directory was named (a test run, a library): pick again now.
    values.ValueClass = values.get_value_class()
    return str(directory)


def configure(settings: dict) -> None:
    global METRICS
    if not settings.get("metrics.enabled"):
        METRICS = None
        return
    prepare_directory(settings)
    METRICS = _Metrics(multiprocess=True)
    log.info("metrics: serving /metrics from %s", os.environ["PROMETHEUS_MULTIPROC_DIR"])


def child_exit(server, worker) -> None:
    """gunicorn hook: a worker that is gone no longer counts in the live gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


# -- recording (no-ops while metrics are off) -----------------------------------------------
def request_done(request, status: int, seconds: float) -> None:
    m = METRICS
    if m is None:
        return
    matched = getattr(request, "matched_route", None)
    route = matched.pattern if matched is not None else "(unmatched)"
    method = request.method if request.method in METHODS else "OTHER"
    m.requests.labels(route, method, str(status)).inc()
    m.latency.labels(route, method).observe(seconds)


def cache_event(kind: str, event: str) -> None:
    m = METRICS
    if m is not None:
        m.cache.labels(kind, event).inc()


def upstream_call(dependency: str, seconds: float | None, ok: bool) -> None:
    m = METRICS
    if m is None:
        return
    m.upstream_calls.labels(dependency, "ok" if ok else "error").inc()
    if seconds is not None:
        m.upstream_latency.labels(dependency).observe(seconds)


def breaker_state(dependency: str, state: str) -> None:
    m = METRICS
    if m is not None:
        m.breaker.labels(dependency).set(BREAKER_VALUES.get(state, 0))


def pool_checked_out() -> None:
    m = METRICS
    if m is not None:
        m.pool_in_use.inc()


def pool_checked_in() -> None:
    m = METRICS
    if m is not None:
        m.pool_in_use.dec()


def pool_waited(seconds: float, timed_out: bool) -> None:
    m = METRICS
    if m is None:
        return
    m.pool_wait.observe(seconds)
    if timed_out:
        m.pool_timeouts.inc()


def throttled(kind: str) -> None:
    m = METRICS
    if m is not None:
        m.throttled.labels(kind).inc()


def snapshot() -> dict | None:
    """Cache and upstream figures summed over every worker process (None while metrics are off):
    what the console's dashboard and cache page show."""
    m = METRICS
    if m is None:
        return None
    from prometheus_client import CollectorRegistry

    if m.multiprocess:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = m.registry
    cache: dict[str, dict[str, float]] = {}
    upstream: dict[str, dict[str, float]] = {}
    for family in registry.collect():
        for sample in family.samples:
            if sample.name == "nexus_cache_events_total":
                kind = cache.setdefault(sample.labels["kind"], {})
                kind[sample.labels["event"]] = kind.get(sample.labels["event"], 0) + sample.value
            elif sample.name == "nexus_upstream_calls_total":
                dep = upstream.setdefault(sample.labels["dependency"], {})
                dep[sample.labels["outcome"]] = dep.get(sample.labels["outcome"], 0) + sample.value
    totals: dict[str, float] = {}
    for events in cache.values():
        for event, value in events.items():
            totals[event] = totals.get(event, 0) + value
    looked_up = totals.get("hit", 0) + totals.get("miss", 0) + totals.get("stale", 0)
    return {"cache": cache, "totals": totals, "upstream": upstream,
            "hit_ratio": totals.get("hit", 0) / looked_up if looked_up else None}


# -- GET /metrics -----------------------------------------------------------------------
def metrics_view(request):
    from pyramid.response import Response

    from .api.errors import render_error

    m = METRICS
    if m is None:
        return render_error(request, 404, "NOT_FOUND", "The resource was not found.")
    token = request.registry.settings.get("metrics.token") or ""
    if token:
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            return render_error(request, 401, "AUTHENTICATION_REQUIRED", "A valid metrics token is required.",
                                headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    body, content_type = m.exposition()
    body += job_exposition(request)
    response = Response(body=body)
    response.headers["Content-Type"] = content_type
    response.headers["Cache-Control"] = "no-store"
    return response


def job_exposition(request) -> bytes:
    """Background jobs and the recommendation model, read from the database at scrape time.

    Jobs run in worker processes the web's metrics directory never sees, so their figures
    come from the table every process writes: the same answer from whichever worker is
    scraped. Labels are bounded (job kinds and states). Without the database: nothing.
    """
    from prometheus_client import CollectorRegistry, Gauge, generate_latest
    from sqlalchemy import func, select

    from .dependencies import postgres
    from .models import Job, RecommenderModel

    def load():
        db = request.dbsession
        finished = db.execute(
            select(Job.kind, Job.state, func.count(), func.max(Job.finished_at))
            .where(Job.state.in_(("done", "failed"))).group_by(Job.kind, Job.state)).all()
        last = (select(Job.kind, func.max(Job.finished_at).label("at")).where(Job.finished_at.is_not(None))
                .group_by(Job.kind).subquery())
        latest = db.execute(select(Job.kind, Job.duration, Job.state)
                            .join(last, (Job.kind == last.c.kind) & (Job.finished_at == last.c.at))).all()
        waiting = db.execute(select(Job.kind, Job.state, func.count())
                             .where(Job.state.in_(("queued", "running"))).group_by(Job.kind, Job.state)).all()
        trained = db.execute(select(func.max(RecommenderModel.trained_at))).scalar()
        return finished, latest, waiting, trained

    loaded = postgres.optional(request, load)
    if loaded is None:
        return b""
    finished, latest, waiting, trained = loaded
    registry = CollectorRegistry()
    runs = Gauge("nexus_job_runs", "Finished runs of background jobs in the table, by kind and result",
                 ["kind", "result"], registry=registry)
    last_success = Gauge("nexus_job_last_success_timestamp_seconds", "When a job of this kind last succeeded",
                         ["kind"], registry=registry)
    last_duration = Gauge("nexus_job_last_duration_seconds", "Duration of the latest finished job of this kind",
                          ["kind"], registry=registry)
    last_ok = Gauge("nexus_job_last_result_ok", "1 if the latest finished job of this kind succeeded, else 0",
                    ["kind"], registry=registry)
    pending = Gauge("nexus_jobs_pending", "Jobs queued or running, by kind and state", ["kind", "state"],
                    registry=registry)
    model_age = Gauge("nexus_recommender_model_trained_timestamp_seconds",
                      "When the serving recommendation model was trained (absent before the first)",
                      registry=registry)
    for kind, state, count, when in finished:
        runs.labels(kind, "success" if state == "done" else "failure").set(count)
        if state == "done" and when is not None:
            last_success.labels(kind).set(when.timestamp())
    for kind, duration, state in latest:
        if duration is not None:
            last_duration.labels(kind).set(duration)
        last_ok.labels(kind).set(1 if state == "done" else 0)
    for kind, state, count in waiting:
        pending.labels(kind, state).set(count)
    if trained is not None:
        model_age.set(trained.timestamp())
    return generate_latest(registry)


def includeme(config):
    from .authz import PUBLIC

    configure(config.get_settings())
    config.add_route("metrics", "/metrics")
    config.add_view(metrics_view, route_name="metrics", request_method="GET", permission=PUBLIC)
