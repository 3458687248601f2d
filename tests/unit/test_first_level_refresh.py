"""The first level's entries are refreshed by one request at a time, while the others are
answered from the entry; a refresh that finds the same generation keeps the entry's object."""
from __future__ import annotations

import threading
import time

import pytest
from dogpile.cache.api import NO_VALUE

from nexus_pyramid.movie_source.cache import CACHE, STALE
from tests.unit.test_cache_regions import cached

KEY = "counting:en-US:trending:day:1"
LOCAL_TTL = 1.0  # half of it waited for in most tests; the other half is the margin for the checks


def past_half_life_of(cache, key: str) -> None:
    """Waits until the first level's entry for ``key`` is due for a refresh (kept over half its TTL ago)."""
    kept = cache.local.get_value_metadata(key) or cache.stale_local.get_value_metadata(key)
    time.sleep(max(0.0, kept.metadata["ct"] + LOCAL_TTL / 2 - time.time()) + 0.02)


def past_half_life(cache) -> None:
    past_half_life_of(cache, KEY)


def counting_shared_reads(cache) -> list:
    reads = []
    original = cache.region.get_value_metadata
    cache.region.get_value_metadata = lambda *a, **kw: reads.append(a[0]) or original(*a, **kw)
    return reads


def test_an_entry_is_served_without_a_refresh_for_half_its_local_ttl():
    source, cache = cached(local_ttl=LOCAL_TTL)
    first = cache.trending("day", 1)
    reads = counting_shared_reads(cache)
    for _ in range(5):
        assert cache.trending("day", 1).value is first.value
    assert cache.first_level(KEY, claim=True)[0] is first.value
    assert reads == [] and source.calls["trending"] == 1


def test_one_request_refreshes_an_entry_while_the_others_are_served_it():
    source, cache = cached(local_ttl=LOCAL_TTL)
    first = cache.trending("day", 1)
    kept = cache.first_level(KEY)
    past_half_life(cache)
    reading, finish = threading.Event(), threading.Event()
    original = cache.region.get_value_metadata
    reads = []

    def slow_read(*args, **kwargs):  # the refreshing request, held inside its shared-cache read
        reads.append(args[0])
        reading.set()
        finish.wait(10)
        return original(*args, **kwargs)

    cache.region.get_value_metadata = slow_read
    refreshed = []
    refresher = threading.Thread(target=lambda: refreshed.append(cache.trending("day", 1)))
    refresher.start()
    try:
        assert reading.wait(10)
        # Meanwhile: every other request, and the event loop's replay look-up, get the entry.
        others = [cache.trending("day", 1) for _ in range(20)]
        assert all(r.source == CACHE and r.value is first.value for r in others)
        assert cache.first_level(KEY, claim=True) is kept
        assert len(reads) == 1
    finally:
        finish.set()
        refresher.join(10)
    # The shared cache had the same generation: the same tuple is kept (what was derived from
    # it, the replays, stays good), for another local TTL; the claim is over.
    assert refreshed[0].source == CACHE and cache.first_level(KEY) is kept
    assert cache._refreshes.get(KEY) is None and source.calls["trending"] == 1
    assert cache.local.get_value_metadata(KEY).metadata["ct"] > time.time() - 0.5


def test_the_event_loop_sends_one_request_to_refresh_and_the_app_takes_it():
    source, cache = cached(local_ttl=LOCAL_TTL)
    cache.trending("day", 1)
    kept = cache.first_level(KEY)
    past_half_life(cache)
    assert cache.first_level(KEY, claim=True) is None  # this request goes to the app
    assert cache.first_level(KEY, claim=True) is kept  # the next ones are replayed meanwhile
    assert cache.first_level(KEY) is kept  # a look-up that does not claim is unaffected
    reads = counting_shared_reads(cache)
    assert cache.trending("day", 1).source == CACHE  # the app's fetch takes the refresh
    assert reads == [KEY] and cache.first_level(KEY) is kept and cache._refreshes.get(KEY) is None
    assert cache.trending("day", 1).source == CACHE and reads == [KEY]  # kept anew: no refresh due


def test_a_refresh_that_fails_gives_up_its_claim():
    source, cache = cached(local_ttl=LOCAL_TTL)
    cache.trending("day", 1)
    past_half_life(cache)
    original = cache.region.get_value_metadata

    def broken(*args, **kwargs):
        raise RuntimeError("shared cache read failed")

    cache.region.get_value_metadata = broken
    with pytest.raises(RuntimeError):
        cache.trending("day", 1)
    assert cache._refreshes.get(KEY) is None
    cache.region.get_value_metadata = original
    assert cache.trending("day", 1).source == CACHE  # the next request refreshes it


def test_a_claim_not_taken_ends_with_the_local_ttl():
    source, cache = cached(local_ttl=LOCAL_TTL)
    cache.trending("day", 1)
    past_half_life(cache)
    assert cache.first_level(KEY, claim=True) is None  # sent, but its request never asks the cache
    assert cache.first_level(KEY, claim=True) is not None
    cache._refreshes[KEY] = ("sent", time.time() - LOCAL_TTL - 0.01)
    assert cache.first_level(KEY, claim=True) is None  # void: another request is sent


def test_a_refresh_whose_claim_went_void_leaves_the_newer_claim_in_place():
    source, cache = cached(local_ttl=LOCAL_TTL)
    cache.trending("day", 1)
    past_half_life(cache)
    original = cache.region.get_value_metadata
    newer = []

    def outlived(*args, **kwargs):  # the refresh outlives its claim; another request claims it
        newer.append(("sent", time.time()))
        cache._refreshes[KEY] = newer[0]
        return original(*args, **kwargs)

    cache.region.get_value_metadata = outlived
    cache.trending("day", 1)
    cache.region.get_value_metadata = original
    assert cache._refreshes.get(KEY) is newer[0]  # not forgotten by the older refresh


def test_a_stale_copy_ends_the_fresh_entry_and_is_kept_by_generation():
    source, cache = cached(local_ttl=LOCAL_TTL)
    genres = "counting:en-US:genres"
    fresh = cache.genres()
    cache.region.invalidate(hard=False)  # the shared value expires; the first level still has it
    source.fail_genres = True
    assert cache.genres().source == CACHE
    past_half_life_of(cache, genres)
    stale = cache.genres()  # the refresh: the source fails, the expired value is served
    assert stale.source == STALE and stale.value == fresh.value and cache.local.get(genres) is NO_VALUE
    copy = cache.first_level(genres)
    assert copy == (stale.value, stale.created)
    past_half_life_of(cache, genres)
    again = cache.genres()  # refreshed and failed again: the same generation, the same tuple
    assert again.source == STALE and cache.first_level(genres) is copy
    assert source.calls["genres"] == 3


def test_expire_all_forgets_the_refresh_claims_of_the_entries_it_ends():
    source, cache = cached(local_ttl=LOCAL_TTL)
    cache.trending("day", 1)
    past_half_life(cache)
    assert cache.first_level(KEY, claim=True) is None  # the event loop claims the refresh
    cache.expire_all()
    cache.trending("day", 1)  # a new entry, made before the old claim would have gone void
    past_half_life(cache)
    assert cache.first_level(KEY, claim=True) is None  # its refresh is claimed anew, not blocked
