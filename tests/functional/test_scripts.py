"""The operators' console scripts, against a fresh database."""
from __future__ import annotations

from pathlib import Path

import pytest
from pyramid.paster import get_appsettings
from webtest import TestApp

from nexus_pyramid import make_app
from nexus_pyramid.scripts import create_admin, initialize_db
from tests.conftest import TEST_DB_URL, recreate_postgres_database, make_settings

DEV_INI = str(Path(__file__).resolve().parents[2] / "development.ini")


@pytest.fixture
def fresh_db(tmp_path, monkeypatch):
    if TEST_DB_URL:
        from sqlalchemy import make_url

        url = make_url(TEST_DB_URL)
        url = url.set(database=url.database + "_scripts").render_as_string(hide_password=False)
        recreate_postgres_database(url)
    else:
        url = f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    monkeypatch.setenv("DATABASE_URL", url)
    return url


def test_initialize_db_is_idempotent_and_create_admin_works(fresh_db, monkeypatch, capsys):
    assert initialize_db.main([DEV_INI]) == 0
    assert initialize_db.main([DEV_INI]) == 0
    monkeypatch.setenv("NEXUS_ADMIN_PASSWORD", "an admin password")
    assert create_admin.main([DEV_INI, "--email", "Boss@Example.com", "--name", "Boss"]) == 0
    assert create_admin.main([DEV_INI, "--email", "boss@example.com", "--name", "Boss"]) == 0
    assert "already has an account" in capsys.readouterr().out

    settings = dict(get_appsettings(DEV_INI))
    app = TestApp(make_app(make_settings(fresh_db, **{k: v for k, v in settings.items() if k.startswith("jwt.")}),
                           environ={}))
    data = app.post_json("/api/auth/login", {"email": "boss@example.com", "password": "an admin password"}).json
    assert data["data"]["user"]["roles"] == ["user", "admin"]
    headers = {"Authorization": "Bearer " + data["data"]["access_token"]}
    assert app.get("/api/admin/users", headers=headers).json["data"]["total_results"] == 1


def test_create_admin_rejects_a_short_password(fresh_db, monkeypatch):
    initialize_db.main([DEV_INI])
    monkeypatch.setenv("NEXUS_ADMIN_PASSWORD", "short")
    with pytest.raises(SystemExit) as exc:
        create_admin.main([DEV_INI, "--email", "boss@example.com", "--name", "Boss"])
    assert "8" in str(exc.value)


def test_production_ini_refuses_a_development_secret(monkeypatch):
    from nexus_pyramid import settings as nexus_settings

    prod_ini = str(Path(DEV_INI).with_name("production.ini"))
    raw = dict(get_appsettings(prod_ini))
    env = {"DATABASE_URL": "postgresql://x@127.0.0.1/x", "JWT_SECRET": "development-only-secret-change-me-0123456789",
           "SESSION_SECRET": "s" * 40}
    with pytest.raises(nexus_settings.ConfigurationError, match="JWT secret"):
        nexus_settings.load(raw, env)
    with pytest.raises(nexus_settings.ConfigurationError):
        nexus_settings.load(raw, {**env, "JWT_SECRET": "too-short"})
    good = nexus_settings.load(raw, {**env, "JWT_SECRET": "x" * 40})
    assert good["sqlalchemy.url"] == "postgresql://x@127.0.0.1/x"
