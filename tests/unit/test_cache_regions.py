"""Every in-process cache is a dogpile memory region, expired and invalidated with the shared one."""
from __future__ import annotations

from dogpile.cache.api import NO_VALUE

from nexus_pyramid.movie_source.base import MovieSource, SourceUnavailable, page_of
from nexus_pyramid.movie_source.cache import (LOCAL_ENTRIES, CACHE, UPSTREAM, BoundedDict, CachedMovieSource,
                                              CacheStats, clear_memory_region, make_cache_region)
from nexus_pyramid.services import recommender
from nexus_pyramid.services.movies import GenreNames, MovieService
from tests.conftest import forget_cached_movies


class CountingSource(MovieSource):
    name = "counting"

    def __init__(self):
        self.calls = {"trending": 0, "genres": 0}
        self.fail_genres = False  # True, or the one language whose list fails
        self.action = {"de-DE": "Action (de)"}  # the name of genre 28 by language

    def trending(self, window, page, language=None):
        self.calls["trending"] += 1
        return page_of([{"id": 1, "title": "One", "genre_ids": [28]},
                        {"id": 2, "title": "Two", "genre_ids": []}], page)

    def genres(self, language=None):
        self.calls["genres"] += 1
        if self.fail_genres is True or self.fail_genres == language:
            raise SourceUnavailable("down")
        return [{"id": 28, "name": self.action.get(language, "Action")}]

    movie = recommendations = similar = search_movies = search_people = discover = None


def cached(local_ttl=60.0):
    source = CountingSource()
    region, hard_limit = make_cache_region({}, CacheStats(), prefix="test:regions:")
    return source, CachedMovieSource(source, region, {}, hard_limit, local_ttl=local_ttl)


def test_the_first_level_is_a_memory_region_invalidated_with_the_shared_one():
    source, cache = cached()
    assert cache.trending("day", 1).source == UPSTREAM
    # Served from the first level: the shared region is not asked.
    original = cache.region.get_or_create
    cache.region.get_or_create = lambda *a, **kw: (_ for _ in ()).throw(AssertionError("shared region asked"))
    try:
        assert cache.trending("day", 1).source == CACHE
    finally:
        cache.region.get_or_create = original
    assert cache.local.get("counting:en-US:trending:day:1") is not NO_VALUE
    cache.expire_all()
    assert cache.local.get("counting:en-US:trending:day:1") is NO_VALUE
    assert cache.trending("day", 1).source == UPSTREAM and source.calls["trending"] == 2


def test_without_a_first_level_nothing_is_kept_in_the_process():
    _, cache = cached(local_ttl=0)
    assert cache.local is None and cache.derived is None
    assert cache.trending("day", 1).value["results"]


def test_in_process_regions_are_bounded_least_recently_used_first():
    values = BoundedDict(2)
    values["a"], values["b"] = 1, 2
    assert values.get("a") == 1  # "b" is now the least recently used
    values["c"] = 3
    assert values.get("b") is None and values.get("a") == 1 and values.get("c") == 3
    assert LOCAL_ENTRIES > 0
    nothing = BoundedDict(0)
    nothing["a"] = 1
    assert nothing.get("a") is None


def test_a_page_is_shaped_once_per_first_level_value_and_forgotten_with_it():
    source, cache = cached()
    service = MovieService(None, cache, GenreNames(cache), "https://img.example/")
    shaped = []
    original = service.presenter.from_source
    service.presenter.from_source = lambda raw, names=None: shaped.append(raw["id"]) or original(raw, names)
    first, _ = service._page(cache.trending("day", 1), mirror=False)
    again, _ = service._page(cache.trending("day", 1), mirror=False)
    assert again is first and shaped == [1, 2]
    assert first["results"][0]["genres"] == [{"id": 28, "name": "Action"}]
    cache.expire_all()
    assert cache.derived.get("page:0:counting:en-US:trending:day:1") is NO_VALUE
    service._page(cache.trending("day", 1), mirror=False)
    assert shaped == [1, 2, 1, 2]


def test_genre_names_are_a_region_a_failure_is_remembered_and_reset_forgets():
    source, cache = cached()
    names = GenreNames(cache)
    assert names.get() == {28: "Action"} and names.get() == {28: "Action"}
    assert source.calls["genres"] == 1
    names.region.invalidate()  # as when refresh_after has passed
    source.fail_genres = True
    cache.expire_all()
    assert names.get() == {28: "Action"}  # the shared cache's stale copy, while the source is down
    assert source.calls["genres"] == 2
    clear_memory_region(names.region)
    forget_cached_movies(cache)  # no copy anywhere now
    assert names.get() == {} and source.calls["genres"] == 3
    assert names.get() == {} and source.calls["genres"] == 3  # the failure is remembered (retry_after)
    names.region.invalidate()  # as when retry_after has passed
    source.fail_genres = False
    assert names.get() == {28: "Action"} and source.calls["genres"] == 4


def test_genre_names_by_language_fall_back_to_the_default_and_keep_their_identity():
    source, cache = cached()
    names = GenreNames(cache)
    english, german = names.get(), names.get("de-DE")
    assert english == {28: "Action"} and german == {28: "Action (de)"} and source.calls["genres"] == 2
    assert names.peek("de-DE") is german and names.peek() is english and names.get("en-US") is english
    # A refresh that brings the same names keeps the same dict (pages rendered with it stay good).
    names.region.invalidate()
    forget_cached_movies(cache)  # asked of the source again
    assert names.peek() is None and names.get() is english and source.calls["genres"] == 3
    # Different names are a new dict.
    source.action["en-US"] = "Action!"
    names.region.invalidate()
    forget_cached_movies(cache)
    assert names.get() == {28: "Action!"} and names.get() is not english
    # A language whose list cannot be had gets the default's names; its failure is its own.
    clear_memory_region(names.region)
    forget_cached_movies(cache)
    source.fail_genres = "fr-FR"
    assert names.get("fr-FR") == {28: "Action!"} and names.peek("fr-FR") is None
    calls = source.calls["genres"]
    assert names.get("fr-FR") == {28: "Action!"} and source.calls["genres"] == calls  # remembered
    assert names.get("de-DE") == {28: "Action (de)"}
    # No names in any language: ids are shown without one, always the same empty mapping.
    clear_memory_region(names.region)
    forget_cached_movies(cache)
    source.fail_genres = True
    assert names.get("fr-FR") == {} and names.get("fr-FR") is names.get() is GenreNames.NONE


def test_a_slow_genre_list_holds_up_its_own_language_only():
    import threading

    source, cache = cached()
    names = GenreNames(cache)
    assert names.lock_for("fr-FR") is not names.lock_for("en-US")
    started, release = threading.Event(), threading.Event()
    real = source.genres

    def slow(language=None):
        if language == "fr-FR":
            started.set()
            release.wait(10)
        return real(language)

    source.genres = slow
    french = threading.Thread(target=names.get, args=("fr-FR",))
    french.start()
    try:
        assert started.wait(5)
        english = []
        reader = threading.Thread(target=lambda: english.append(names.get("en-US")))
        reader.start()
        reader.join(3)
        assert english == [{28: "Action"}]  # not behind the French refresh
    finally:
        release.set()
        french.join(5)
    assert names.peek("fr-FR") == {28: "Action"}


def test_the_vote_prior_is_computed_once_per_expiry():
    computed = []

    class Store(recommender.SqlStore):
        def __init__(self):
            pass

        def _vote_prior(self):
            computed.append(1)
            return 6.5, 12.0

    recommender._PRIORS.invalidate()
    try:
        assert Store().vote_prior() == (6.5, 12.0) and Store().vote_prior() == (6.5, 12.0)
        assert computed == [1]
        recommender._PRIORS.invalidate()
        Store().vote_prior()
        assert computed == [1, 1]
    finally:
        recommender._PRIORS.invalidate()


def test_an_expired_value_handed_out_during_another_regeneration_is_stale():
    """dogpile gives the old value to callers while one regenerates: it is said to be stale,
    carries its own age (no freshness left), and is never kept as fresh in the first level."""
    import threading
    import time

    from nexus_pyramid.movie_source.cache import STALE

    source, cache = cached()
    first = cache.trending("day", 1)
    cache.expire_all()
    started, release = threading.Event(), threading.Event()
    real = source.trending

    def slow(window, page, language=None):
        started.set()
        release.wait(5)
        return real(window, page, language)

    source.trending = slow
    regenerating = threading.Thread(target=cache.trending, args=("day", 1))
    regenerating.start()
    assert started.wait(5)
    try:
        meanwhile = cache.trending("day", 1)
    finally:
        release.set()
        regenerating.join(5)
    assert meanwhile.source == STALE and abs(meanwhile.created - first.created) < 1 and meanwhile.max_age() == 0
    assert meanwhile.value == first.value
    after = cache.trending("day", 1)
    assert after.source == CACHE and after.created > first.created and after.max_age(time.time()) > 0


def test_a_stale_copy_handed_out_during_a_regeneration_is_kept_for_the_next_requests():
    """While another caller holds the key's lock, an expired value is served stale, and the
    requests of the next cache.local_ttl seconds get that same copy without the shared cache."""
    import threading

    from nexus_pyramid.movie_source.cache import STALE

    source, cache = cached()
    key = "counting:en-US:trending:day:1"
    first = cache.trending("day", 1)
    cache.expire_all()  # the value stays in the shared region, expired
    lock = cache.region._mutex(cache.region.key_mangler(key))  # the one dogpile uses for the key
    taken = threading.Event()
    release = threading.Event()

    def regenerating_elsewhere():
        lock.acquire()
        taken.set()
        release.wait(10)
        lock.release()

    holder = threading.Thread(target=regenerating_elsewhere)
    holder.start()
    try:
        assert taken.wait(10)
        stale = cache.trending("day", 1)
        assert stale.source == STALE and stale.value == first.value and source.calls["trending"] == 1
        reads = []
        original = cache.region.get_value_metadata
        cache.region.get_value_metadata = lambda *a, **kw: reads.append(1) or original(*a, **kw)
        again = cache.trending("day", 1)
        assert again.source == STALE and again.value is stale.value and reads == []
        assert cache.first_level(key) == (stale.value, stale.created)
    finally:
        release.set()
        holder.join(10)
    # A fresh value ends the kept copy.
    cache.stale_local.invalidate(hard=True)
    fresh = cache.trending("day", 1)
    assert fresh.source == UPSTREAM and cache.first_level(key)[0] is fresh.value
