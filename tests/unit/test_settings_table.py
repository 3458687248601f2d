"""The one settings table: typed values, named errors, the README's table and the ini files."""
from __future__ import annotations

import configparser
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nexus_pyramid import settings as nexus_settings
from nexus_pyramid.settings import SETTINGS, Boolean, ConfigurationError, load, markdown_table

ROOT = Path(__file__).resolve().parents[2]
BASE = {"sqlalchemy.url": "sqlite://", "jwt.secret": "development-only-x"}
README_TABLE = re.compile(r"<!-- settings table:[^\n]*-->\n(.*?)<!-- end of the settings table -->", re.S)


def test_every_setting_is_named_once_with_a_meaning():
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names))
    envs = [s.env for s in SETTINGS if s.env]
    assert len(envs) == len(set(envs))
    assert all(s.meaning for s in SETTINGS)


def test_defaults_load_as_typed_values():
    loaded = load(BASE, {})
    for setting in SETTINGS:
        if setting.name not in BASE:
            assert loaded[setting.name] == setting.default, setting.name
    assert isinstance(loaded["db.keepalives_count"], int) and isinstance(loaded["tmdb.budget"], float)
    assert load({**BASE, "nexus.gc_freeze": "off", "tmdb.budget": "3"}, {})["nexus.gc_freeze"] is False
    assert load({**BASE, "tmdb.budget": "3"}, {})["tmdb.budget"] == 3.0


def test_every_named_variable_and_the_generic_form_set_their_setting():
    for setting in SETTINGS:
        if setting.env:
            sample = {"nexus.movie_source": "tmdb", "jwt.algorithm": "HS384", "mail.tls": "ssl",
                      "nexus.default_language": "fr-FR"}.get(setting.name, "7")
            if setting.name in ("nexus.trusted_proxies",):
                sample = "10.0.0.0/8"
            if setting.name == "nexus.cors_origins":
                sample = "https://app.example.com"
            if setting.name == "nexus.max_body_size":
                sample = "4096"
            if isinstance(setting.kind, Boolean):
                sample = "False" if setting.default else "True"
            loaded = load(BASE, {setting.env: sample}, check=False)
            assert str(loaded[setting.name]) == sample, setting.env
    loaded = load(BASE, {"NEXUS__DB__POOL_TIMEOUT": "1.5", "NEXUS__AUTH__ARGON2__MAX_WAIT": "3",
                         "CACHE_TTL_SEARCH": "40", "NEXUS__CACHE__TTL__SEARCH": "30"})
    assert loaded["db.pool_timeout"] == 1.5 and loaded["auth.argon2.max_wait"] == 3.0
    assert loaded["cache.ttl.search"] == 30  # the generic form wins over the named variable


@pytest.mark.parametrize("key, value", [
    ("tmdb.budget", "soon"), ("tmdb.max_retries", "2.5"), ("cache.ttl.movie", "0"),
    ("nexus.gc_freeze", "maybe"),
    ("cache.hard_limit", str(200 * 24 * 3600)), ("session.max_age", "-1"), ("tmdb.breaker_threshold", "0"),
    ("cache.backend", "dogpile.cache.nowhere"), ("nexus.movie_source", "imdb"), ("cache.local_ttl", "-1"),
])
def test_a_bad_value_stops_start_up_naming_the_setting(key, value):
    with pytest.raises(ConfigurationError, match=re.escape(repr(key))):
        load({**BASE, key: value}, {})


def test_a_bad_value_from_the_environment_names_the_variable():
    with pytest.raises(ConfigurationError, match="CACHE_TTL_MOVIE") as error:
        load(BASE, {"CACHE_TTL_MOVIE": "a day"})
    assert "'cache.ttl.movie'" in str(error.value)
    with pytest.raises(ConfigurationError, match="NEXUS__TMDB__BUDGET"):
        load(BASE, {"NEXUS__TMDB__BUDGET": "-1"})


def test_a_secret_is_never_shown_in_a_message():
    with pytest.raises(ConfigurationError) as error:
        load({**BASE, "nexus.env": "production", "jwt.secret": "short-secret-value"}, {})
    assert "short-secret-value" not in str(error.value)


def test_unknown_settings_stop_start_up():
    with pytest.raises(ConfigurationError, match="tmdb.breaker_treshold"):
        load({**BASE, "tmdb.breaker_treshold": "3"}, {})
    with pytest.raises(ConfigurationError, match="NEXUS__TMDB__BREAKER_TRESHOLD"):
        load(BASE, {"NEXUS__TMDB__BREAKER_TRESHOLD": "3"})
    passed = load({**BASE, "pyramid.reload_templates": "true", "tm.attempts": "1", "jinja2.filters": ""}, {})
    assert passed["pyramid.reload_templates"] == "true" and passed["tm.attempts"] == "1"


def test_value_parses_raw_text_and_falls_back_to_the_table():
    assert nexus_settings.value({}, "redis.cooldown") == 5.0
    assert nexus_settings.value({"redis.cooldown": "2"}, "redis.cooldown") == 2.0
    assert nexus_settings.value(load(BASE, {}), "db.read_timeout") is None


def test_readme_holds_the_generated_table():
    found = README_TABLE.search((ROOT / "README.md").read_text(encoding="utf-8"))
    assert found, "README.md lost its settings table markers"
    assert found.group(1) == markdown_table()


def test_the_markdown_command_prints_the_table():
    out = subprocess.run([sys.executable, "-m", "nexus_pyramid.settings", "--markdown"], capture_output=True,
                         text=True, check=True, cwd=ROOT).stdout
    assert out == markdown_table()


@pytest.mark.parametrize("ini", ["development.ini", "production.ini"])
def test_the_ini_files_use_only_known_settings_with_good_values(ini):
    parser = configparser.ConfigParser(defaults={"here": str(ROOT)})
    parser.read(ROOT / ini)
    app = {k: v for k, v in parser.items("app:main") if k not in ("use", "here")}
    assert app
    secrets = {"JWT_SECRET": "x" * 40, "SESSION_SECRET": "y" * 40}
    loaded = load(app, secrets)  # unknown keys or bad values would raise
    assert loaded["nexus.env"] == app["nexus.env"]


def test_production_ini_keeps_a_database_connection_per_server_thread():
    """Fewer kept connections than threads: a busy worker would open and close a PostgreSQL
    connection for many of its requests (overflow connections are closed on return)."""
    from nexus_pyramid.server import pool_shortfall

    parser = configparser.ConfigParser(defaults={"here": str(ROOT)})
    parser.read(ROOT / "production.ini")
    app = {k: v for k, v in parser.items("app:main") if k not in ("use", "here")}
    loaded = load(app, {"JWT_SECRET": "x" * 40, "SESSION_SECRET": "y" * 40})
    threads = parser.getint("server:main", "threads")
    assert loaded["sqlalchemy.pool_size"] >= threads
    assert pool_shortfall(loaded, threads) is None


def test_a_pool_smaller_than_the_threads_is_named_at_start():
    from nexus_pyramid.server import pool_shortfall

    postgres = {"sqlalchemy.url": "postgresql://nexus@db/nexus", "sqlalchemy.pool_size": 5}
    warning = pool_shortfall(postgres, 12)
    assert "sqlalchemy.pool_size = 5 is below threads = 12" in warning and "at least 12" in warning
    assert pool_shortfall({**postgres, "sqlalchemy.pool_size": 12}, 12) is None
    # SQLite (development) has no such pool.
    assert pool_shortfall({"sqlalchemy.url": "sqlite:///x.sqlite", "sqlalchemy.pool_size": 5}, 12) is None
