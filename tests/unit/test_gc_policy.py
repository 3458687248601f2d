"""The garbage collector's settings: thresholds parsed once, applied in the master and after fork."""
from __future__ import annotations

import gc
import os

import pytest

from nexus_pyramid import freeze_worker
from nexus_pyramid.settings import ConfigurationError, gc_thresholds, load


@pytest.fixture
def restore_gc():
    thresholds, enabled = gc.get_threshold(), gc.isenabled()
    yield
    gc.set_threshold(*thresholds)
    (gc.enable if enabled else gc.disable)()


def test_thresholds_are_parsed_and_checked():
    assert gc_thresholds("700,10,10") == (700, 10, 10)
    assert gc_thresholds(" 5000 ") == (5000,)
    assert gc_thresholds("OFF") is None
    for bad in ("", "0,10,10", "a,b", "1,2,3,4", "700,-1"):
        with pytest.raises(ValueError):
            gc_thresholds(bad)
    with pytest.raises(ConfigurationError):
        load({"sqlalchemy.url": "sqlite://", "jwt.secret": "x" * 40, "nexus.gc_thresholds": "lots"}, {})
    assert load({"sqlalchemy.url": "sqlite://", "jwt.secret": "x" * 40}, {"NEXUS_GC_THRESHOLDS": "off"})["nexus.gc_thresholds"] == "off"


def test_a_forked_worker_freezes_what_it_inherited_and_applies_the_thresholds(restore_gc):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker
        try:
            gc.unfreeze()
            garbage = [[i] for i in range(1000)]  # objects made after the fork, before the worker serves
            freeze_worker({"nexus.gc_freeze": True, "nexus.gc_thresholds": "1234,5,6"})
            os.write(write, f"{gc.get_freeze_count() >= len(garbage)},{gc.get_threshold()},{gc.isenabled()}".encode())
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 200).decode()
    os.waitpid(pid, 0)
    assert answer == "True,(1234, 5, 6),True"


def test_off_turns_automatic_collection_off(restore_gc):
    freeze_worker({"nexus.gc_freeze": False, "nexus.gc_thresholds": "off"})
    assert not gc.isenabled()


def test_the_built_app_keeps_no_source_lines_of_its_configuration():
    """Pyramid reads the source of each module that makes a config call (linecache); the
    built app lets it go before freezing, rather than keep it in every process."""
    import linecache

    from nexus_pyramid import make_app
    from tests.conftest import make_settings

    make_app(make_settings("sqlite://"), environ={})
    assert not [name for name in linecache.cache if "pyramid" in name]
