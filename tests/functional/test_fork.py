"""gunicorn forks its workers from the master that built the app: no connection may be shared."""
from __future__ import annotations

import os

import pytest
from sqlalchemy import text

from nexus_pyramid import make_app
from nexus_pyramid.interfaces import IDatabaseEngine, find_service
from tests.conftest import TEST_DB_URL, make_settings


@pytest.mark.skipif(not TEST_DB_URL, reason="needs NEXUS_TEST_DATABASE_URL (PostgreSQL backends)")
def test_a_forked_worker_opens_its_own_database_connections(database_url, redis_url):
    app = make_app(make_settings(database_url, redis_url, **{"nexus.gc_freeze": "false"}), environ={})
    engine = find_service(app.registry, IDatabaseEngine)
    assert engine.pool.checkedin() == 0  # the builder (gunicorn's master) keeps no connection
    with engine.connect() as conn:  # one pooled connection in the parent
        parent_backend = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    assert engine.pool.checkedin() == 1

    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # the worker
        code = 1
        try:
            os.close(read_end)
            with engine.connect() as conn:
                backend = conn.execute(text("SELECT pg_backend_pid()")).scalar()
            os.write(write_end, str(backend).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        child_backend = int(pipe.read() or 0)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert child_backend and child_backend != parent_backend
    with engine.connect() as conn:  # the parent's connection still works: the child did not close it
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar() == parent_backend
    engine.dispose()
