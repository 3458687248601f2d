"""The shared cache's values are written by orjson as json.dumps wrote them, and both read back."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import date, datetime, timezone

import pytest

from nexus_pyramid.movie_source.cache import _json_default, dumps, loads

VALUE = {"page": 1, "results": [{"id": 603, "title": "The Matrix — 黑客帝国", "vote_average": 8.2, "adult": False,
                                 "release_date": date(1999, 3, 30), "genre_ids": [28, 878], "overview": None}],
         "at": datetime(2026, 11, 30, 20, 0, 1, 5, tzinfo=timezone.utc), "by_id": {603: [1.5, 2]}, "score": 1e-07}


def test_what_is_written_is_what_json_dumps_wrote():
    written = json.dumps(VALUE, separators=(",", ":"), default=_json_default, ensure_ascii=False)
    assert json.loads(dumps(VALUE)) == json.loads(written)
    assert loads(dumps(VALUE)) == json.loads(written)
    assert loads(dumps(VALUE))["by_id"] == {"603": [1.5, 2]}  # int keys become strings, as before
    assert loads(dumps(VALUE))["at"] == "2026-11-30T20:00:01.000005+00:00"


def test_values_written_by_json_dumps_are_read():
    old = json.dumps(VALUE, separators=(",", ":"), default=_json_default).encode()
    assert loads(old) == json.loads(old)
    with_nan = json.dumps({"score": float("nan"), "x": float("inf")}).encode()  # not JSON: orjson refuses it
    read = loads(with_nan)
    assert math.isnan(read["score"]) and read["x"] == math.inf


def test_what_json_dumps_refused_is_refused():
    @dataclass
    class Thing:
        a: int

    with pytest.raises(TypeError):
        dumps({"thing": Thing(1)})
    with pytest.raises(TypeError):
        dumps({"set": {1, 2}})


@pytest.mark.parametrize("data", [b"not json", b"\xff\xfe", b"[1, 2", b"", b"[" * 100_000])
def test_what_neither_reads_is_no_value_not_an_error(data):
    from dogpile.cache.api import CantDeserializeException

    with pytest.raises(CantDeserializeException):
        loads(data)


@pytest.mark.parametrize("value,framed", [
    (b'{"ct": 1764000000.5, "v": 2}|{"page": 1}', True), (b'{"ct": 1764000000, "v": 2}|not json', True),
    (b'{"ct": 1.0, "v": 2}|', True),
    (b"not json", False), (b"{}", False), (b"|", False), (b"null|[]", False), (b'[1]|[]', False),
    (b'{"ct": "x", "v": 2}|[]', False), (b'{"ct": true, "v": 2}|[]', False), (b'{"ct": 1e999, "v": 2}|[]', False),
    (b'{"ct": 1.0}|[]', False), ("text", False), (None, False),
])
def test_an_entry_is_framed_as_dogpile_frames_it(value, framed):
    from nexus_pyramid.movie_source.cache import readable

    assert readable(value) is framed


def test_an_entry_dated_past_another_host_s_clock_drift_is_not_read():
    import time

    from nexus_pyramid.movie_source.cache import FUTURE_SLACK, created_at, readable

    now = time.time()
    ahead = b'{"ct": %f, "v": 2}|{"results": []}'
    assert created_at(ahead % (now + 60)) == pytest.approx(now + 60)  # another host's clock, a minute ahead
    assert not readable(ahead % (now + FUTURE_SLACK + 60)) and created_at(ahead % 1e12) is None
