"""No password, token or secret in any log line, whatever the outcome of the request."""
from __future__ import annotations

import logging

from tests.conftest import PASSWORD


def test_credentials_never_reach_the_logs(api, caplog, settings):
    with caplog.at_level(logging.DEBUG):
        data = api.register().json["data"]
        api.login(password="a wrong password", status=401)
        login = api.login().json["data"]
        api.app.post_json("/api/auth/refresh", {"refresh_token": login["refresh_token"]})
        api.app.post_json("/api/auth/refresh", {"refresh_token": login["refresh_token"]}, status=401)  # reuse
        api.app.put_json("/api/user/profile", {"password": "the next password", "current_password": PASSWORD},
                         headers=api.auth(data["access_token"]))
        api.app.get("/api/user/profile", headers=api.auth("tampered." + data["access_token"]), status=401)
    text = caplog.text
    # Logging was on: every request wrote its access line, and failures their warnings.
    assert sum(r.name == "nexus.access" for r in caplog.records) == 7
    for secret in (PASSWORD, "a wrong password", "the next password", data["access_token"], data["refresh_token"],
                   login["access_token"], login["refresh_token"], settings["jwt.secret"]):
        assert secret not in text
