"""The failure policy: one module per dependency, which every caller goes through.

Each module owns that dependency's timeouts, its retry rule, its breaker and its
fallback; callers never add their own.

- ``redis``    (shared cache, locks, rate limits): short connect/socket timeouts; after
  repeated failures Redis is not called for a cool-down and the process-local fallback
  is used; lock waits are bounded.
- ``postgres`` (the database): connect, statement and idle-in-transaction timeouts, TCP
  keepalives and a bounded pool wait; a request that cannot get a working connection in
  time answers a 503 envelope with ``Retry-After``.
- TMDb: ``movie_source/tmdb.py`` (timeouts, retry budget, breaker), behind the cache in
  ``movie_source/cache.py`` (stale-on-error, one regeneration per key).

``outage.OutageLog`` writes one line per dependency outage per interval, with a count of
what was affected, instead of a traceback per request.
"""


def includeme(config):
    """``config.add_readiness_probe(name, probe)``: what /readyz checks besides the database."""
    from ..interfaces import IReadinessProbes

    probes: dict = {}
    config.register_service(probes, IReadinessProbes)
    config.add_directive("add_readiness_probe", lambda config, name, probe: probes.__setitem__(name, probe))
    config.include(".redis")
