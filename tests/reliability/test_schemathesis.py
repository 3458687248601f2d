"""Property-based API conformance: schemathesis's command line against the served /api/openapi.json.

The app runs on the test database (PostgreSQL in CI) behind a real HTTP server (waitress, in
a thread, on a free port of 127.0.0.1); ``schemathesis run`` generates requests from the
document it serves and runs every check on the answers (``--checks all``: no 5xx, documented
status codes, headers, content types and bodies (response-schema conformance), invalid data
rejected, 405 with Allow for undocumented methods, authentication not ignored, ...), signed
in as an administrator so that protected operations answer with data. Its pytest plugin
fails under pytest 9, hence the command line. The number of examples per operation is
bounded so that this stays well under two minutes.

Left out, with the reason:
- ``positive_data_acceptance``: some schema-valid requests are a 400 by rule, and the rule
  depends on the data or the clock, which a schema cannot state: a date of birth in the
  future, genre and movie ids that do not exist; and JSON Schema counts ``1.0`` as an
  integer where the API's strict types want an integer literal.
- ``POST /api/auth/logout`` runs in a second pass without the token: ``{"all": true}`` ends
  every session of the caller, which would sign the administrator out for the rest of the run.
  So does ``POST /api/admin/users/{user_id}/suspend`` (once the stateful phase has made another
  admin, it may suspend ours): it runs in the second pass too.
"""
from __future__ import annotations

import itertools
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy.orm import Session
from webtest import TestApp

from nexus_pyramid import make_app
from nexus_pyramid.api.schemas import DeleteAccountBody
from tests.conftest import PASSWORD, Api, make_settings

MAX_EXAMPLES = 10
SEED = 20261130
EXCLUDED_CHECKS = "positive_data_acceptance"
MEMBER_PASSWORD = "a member's own password"
SIGNS_OUT = ("auth_logout_post", "admin_user_suspend_post")
SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))


@pytest.fixture
def fuzz_server(database_url, redis_url, committed, engine):
    from waitress.server import create_server

    app = make_app(make_settings(database_url, redis_url, **{
        # Generated logins must not lock each other out for the rest of the run.
        "auth.login_limit_per_account": "10000/minute", "auth.login_limit_per_address": "10000/minute",
        "auth.login_limit_per_address_account": "10000/minute"}), environ={})
    session = Session(bind=engine, expire_on_commit=False)
    api = Api(TestApp(app), session)
    # The examples phase sends DELETE /api/user/profile's example as each caller: it must not be
    # either caller's password, or it would erase the account (the admin only as the last admin: 409).
    example = DeleteAccountBody.examples[0]["current_password"]
    assert example not in (PASSWORD, MEMBER_PASSWORD)
    admin = api.user(email="fuzz-admin@example.com", roles=("user", "admin"))
    member = api.user(email="fuzz-member@example.com", password=MEMBER_PASSWORD)
    session.close()
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}", admin["token"], member["token"]
    server.close()


NO_BEARER = {"POST /api/auth/login", "POST /api/auth/refresh"}


def only_401(output: str) -> set[str]:
    """The operations schemathesis's warning lists as having answered nothing but 401. A warning
    whose list this cannot read counts as one unknown operation, never as none."""
    head, found, rest = output.partition("401 Unauthorized (")
    if not found:
        return set()
    listed = rest.partition("\n")[2].splitlines()
    operations = {line.strip()[2:] for line in itertools.takewhile(lambda l: l.strip().startswith("- "), listed)}
    return operations or {"(a 401 warning this test cannot read)"}


def schemathesis(url: str, workdir: Path, *args: str) -> subprocess.CompletedProcess:
    command = [SCHEMATHESIS, "run", f"{url}/api/openapi.json", "--checks", "all", "--exclude-checks",
               EXCLUDED_CHECKS, "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED), "--workers", "1",
               "--request-timeout", "10", "--generation-database", "none", "--no-color", *args]
    # Run in a scratch directory: schemathesis keeps state (.schemathesis/) in its working directory.
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=workdir,
                          env={**os.environ, "SCHEMATHESIS_HOOKS": ""})


def test_the_api_conforms_to_its_document(fuzz_server, tmp_path):
    url, token, member = fuzz_server
    excluded = [arg for operation in SIGNS_OUT for arg in ("--exclude-operation-id", operation)]
    # As an administrator (every operation answers with data), then as a member (the role
    # "user": the admin operations answer their documented 403).
    for bearer in (token, member):
        signed_in = schemathesis(url, tmp_path, "--header", f"Authorization: Bearer {bearer}", *excluded)
        assert signed_in.returncode == 0, signed_in.stdout[-20000:] + signed_in.stderr[-5000:]
        # The token stayed valid: no operation that takes it answered only 401 (schemathesis warns
        # then; sign-in and refresh take none, and answer 401 to credentials made up). Only-403s
        # can be legitimate: the stateful phase may give another user the role admin and revoke ours.
        assert only_401(signed_in.stdout) <= NO_BEARER, signed_in.stdout[-5000:]
    included = [arg for operation in SIGNS_OUT for arg in ("--include-operation-id", operation)]
    signing_out = schemathesis(url, tmp_path, *included)
    assert signing_out.returncode == 0, signing_out.stdout[-20000:] + signing_out.stderr[-5000:]
