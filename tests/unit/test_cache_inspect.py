"""Which kind a cache key belongs to: keys carry the source, the language, then the lookup."""
import pytest

from nexus_pyramid.movie_source.inspect import kind_of


@pytest.mark.parametrize("key, kind", [
    ("tmdb:en-US:trending:day:1", "trending"),
    ("catalog:en:discover:g=18:s=popularity:1", "trending"),
    ("tmdb:fr-FR:movie:603", "movie"),
    ("tmdb:en-US:recs:603:1", "recommendations"),
    ("tmdb:en-US:search:matrix:1", "search"),
    ("tmdb:de-DE:genres", "genres"),
    ("tmdb:en-US:_lock:x", None),
    ("tmdb:trending", None),
])
def test_kind_of_reads_the_lookup_after_the_language(key, kind):
    assert kind_of(key) == kind
