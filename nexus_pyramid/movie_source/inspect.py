"""What the movie cache holds, for the console's Cache page, and purging it.

Reads the shared cache (Redis, or this process's memory backend without Redis) under the
region's key prefix, without decoding any value: dogpile stores each entry as
``<metadata JSON>|<payload>``, and the metadata's ``ct`` (creation time) gives its age. From
Redis only the first ``HEAD_BYTES`` of each value are read (GETRANGE, pipelined): a page of
movies is tens of kilobytes, its metadata some forty bytes. At most ``MAX_KEYS`` keys are
read, so a large cache costs a bounded scan. Locks and the "not found" markers are counted
apart from the entries.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from .cache import TTL_KINDS, clear_memory_region, created_at

MAX_KEYS = 5000
BATCH = 200
HEAD_BYTES = 256  # the metadata JSON and its "|" (dogpile writes {"ct": ..., "v": ...})
KIND_OF = {"trending": "trending", "discover": "trending", "movie": "movie", "recs": "recommendations",
           "similar": "recommendations", "search": "search", "people": "search", "genres": "genres"}


@dataclass
class Entry:
    key: str  # the region's key (what ``purge_key`` takes)
    kind: str
    age: float
    fresh: bool
    remaining: float  # seconds of freshness left (<= 0: stale, kept to serve when the source fails)


@dataclass
class KindSummary:
    kind: str
    ttl: int
    entries: list[Entry] = field(default_factory=list)

    @property
    def fresh(self) -> int:
        return sum(1 for e in self.entries if e.fresh)

    @property
    def stale(self) -> int:
        return len(self.entries) - self.fresh


def kind_of(key: str) -> str | None:
    """``tmdb:en-US:trending:day:1`` (source, language, what) -> ``trending``; None for what is
    not a movie entry."""
    parts = key.split(":")
    return KIND_OF.get(parts[2]) if len(parts) > 2 else None


def _created(raw) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, (bytes, bytearray)):  # the head of an entry (HEAD_BYTES): its metadata is there
        return created_at(bytes(raw))
    metadata = getattr(raw, "metadata", None)
    return float(metadata["ct"]) if metadata and "ct" in metadata else None


class CacheInspector:
    def __init__(self, source, redis=None, prefix: str = "nexus:movies:"):
        self.source = source  # CachedMovieSource
        self.redis = redis  # RedisDependency or None
        self.prefix = prefix

    def _raw_items(self) -> list[tuple[str, object]]:
        region = self.source.region
        if self.redis is not None:
            def scan(client):
                keys = []
                for key in client.scan_iter(match=self.prefix + "*", count=500):
                    keys.append(key)
                    if len(keys) >= MAX_KEYS:
                        break
                found = []
                for start in range(0, len(keys), BATCH):
                    batch = keys[start:start + BATCH]
                    pipe = client.pipeline(transaction=False)
                    for key in batch:
                        pipe.getrange(key, 0, HEAD_BYTES - 1)
                    # A key of another type answers an error, as MGET answered it nothing: not an entry.
                    heads = pipe.execute(raise_on_error=False)
                    found += [(key, None if isinstance(head, Exception) else head) for key, head in zip(batch, heads)]
                return found

            rows = self.redis.call(scan, lambda: [], "cache inspection")
            # A key that is not UTF-8 (not one of ours) is shown, never a 500.
            return [(k.decode(errors="backslashreplace") if isinstance(k, bytes) else k, v) for k, v in rows]
        backend = getattr(region.backend, "proxied", region.backend)
        cache = getattr(backend, "_cache", {})
        return list(cache.items())[:MAX_KEYS]

    def summary(self) -> list[KindSummary]:
        now = time.time()
        kinds = {kind: KindSummary(kind, self.source.ttls[kind]) for kind in TTL_KINDS}
        for mangled, raw in self._raw_items():
            if not mangled.startswith(self.prefix):
                continue
            key = mangled[len(self.prefix):]
            kind = kind_of(key)
            created = _created(raw)
            if kind is None or created is None:
                continue  # a lock, a "not found" marker, another region's key
            age = max(0.0, now - created)
            remaining = kinds[kind].ttl - age
            kinds[kind].entries.append(Entry(key, kind, age, remaining > 0, remaining))
        for summary in kinds.values():
            summary.entries.sort(key=lambda e: e.age)
        return list(kinds.values())

    def held(self, key: str) -> bool | None:
        """Whether the shared cache holds an entry under ``key`` (None: Redis did not answer)."""
        mangled = self.prefix + key
        if self.redis is not None:
            return self.redis.call(lambda client: bool(client.exists(mangled)), lambda: None, "cache inspection")
        backend = getattr(self.source.region.backend, "proxied", self.source.region.backend)
        return mangled in getattr(backend, "_cache", {})

    def purge_key(self, key: str) -> bool:
        """Forget one entry everywhere this process can: the shared cache and its local levels.

        Other workers' first level (``cache.local_ttl``, 2 s) lets theirs go by itself."""
        if kind_of(key) is None:
            return False
        self.source.region.delete(key)
        for region in (self.source.local, self.source.derived):
            if region is not None:
                region.delete(key)
        return True

    def purge_kind(self, kind: str) -> int:
        if kind not in TTL_KINDS:
            return 0
        keys = [e.key for s in self.summary() if s.kind == kind for e in s.entries]
        for start in range(0, len(keys), BATCH):
            self.source.region.delete_multi(keys[start:start + BATCH])
        for region in (self.source.local, self.source.derived):
            clear_memory_region(region)
        return len(keys)
