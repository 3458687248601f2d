"""Defects found in what landed (issue 11): scripts that commit, exclusion of every interacted
movie, and the database's movie id space. On SQLite by default, on PostgreSQL in CI."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, insert, select
from sqlalchemy.orm import Session

from nexus_pyramid.models import Movie, MovieSimilarity, UserMovieInteraction
from nexus_pyramid.models.meta import utcnow
from tests.conftest import TEST_DB_URL

# Real commits: see the committed fixture (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("committed")

ROOT = Path(__file__).resolve().parents[2]
DEV_INI = str(ROOT / "development.ini")
SCRIPTS = Path(sys.executable).parent
TOY_STORY, TOY_STORY_2, MATRIX = 1, 3114, 2571


def script_env(database_url: str, **extra) -> dict:
    """The environment of a console script run against the test database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEXUS", "DATABASE_URL", "REDIS_URL"))}
    env.update({"DATABASE_URL": database_url, "NEXUS_MOVIE_SOURCE": "catalog", **extra})
    return env


def run_script(name: str, database_url: str, *args, **env) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPTS / name), DEV_INI, *args], env=script_env(database_url, **env),
                          capture_output=True, text=True, timeout=300)


def load_catalog(engine) -> list[dict]:
    """Every catalog movie in the local mirror, as ``nexus-initialize-db`` loads it."""
    from nexus_pyramid.movie_source.catalog import CatalogSource
    from nexus_pyramid.movie_source.genres import TMDB_GENRES
    from nexus_pyramid.services.movies import upsert_movies

    movies = CatalogSource().all_movies()
    with Session(engine) as session, session.begin():
        upsert_movies(session, movies, {g["id"]: g["name"] for g in TMDB_GENRES})
    return movies


def add_interactions(engine, user_id, tmdb_ids, kind="liked", newest_last=True) -> None:
    """Interactions written straight to the table, oldest first (``tmdb_ids[0]`` is the oldest)."""
    with Session(engine) as session, session.begin():
        ids = dict(session.execute(
            select(Movie.tmdb_id, Movie.id).where(Movie.tmdb_id.in_(list(tmdb_ids)))).all())
        start = utcnow() - timedelta(days=30)
        session.execute(insert(UserMovieInteraction), [
            {"user_id": user_id, "movie_id": ids[t], "interaction_type": kind,
             "created_at": start + timedelta(seconds=n if newest_last else -n)}
            for n, t in enumerate(tmdb_ids)])


# -- 1. nexus-rebuild-similarities commits ----------------------------------------------
def test_rebuild_similarities_script_persists_its_rows(api, database_url):
    """Run as operators run it (a process of its own); the rows are there for any other connection."""
    for n in range(3):
        fan = api.user(email=f"fan{n}@example.com")
        for tmdb_id in (TOY_STORY, TOY_STORY_2, MATRIX):
            api.app.post_json("/api/user/interactions", {"tmdb_id": tmdb_id, "interaction_type": "liked"},
                              headers=api.auth(fan["token"]))

    done = run_script("nexus-rebuild-similarities", database_url)
    assert done.returncode == 0, done.stderr
    assert "6 movie similarities" in done.stdout

    fresh = create_engine(database_url)  # a new engine: nothing shared with the script or the app
    try:
        with Session(fresh) as session:
            rows = session.execute(
                select(Movie.tmdb_id, MovieSimilarity.score, MovieSimilarity.support)
                .join(Movie, Movie.id == MovieSimilarity.movie_id)).all()
            pairs = session.execute(select(func.count()).select_from(MovieSimilarity)).scalar_one()
    finally:
        fresh.dispose()
    assert pairs == 6  # each of the three movies has the two others as neighbours
    assert sorted(r.tmdb_id for r in rows) == sorted([TOY_STORY, TOY_STORY_2, MATRIX] * 2)
    for row in rows:
        assert 0 < row.score <= 1
        assert row.support == pytest.approx(3.0)  # three users liked both


def test_rebuild_similarities_script_replaces_the_old_rows(api, database_url, engine):
    """A second run after the likes changed leaves only the new neighbours (and commits the delete)."""
    for n in range(2):
        fan = api.user(email=f"pair{n}@example.com")
        for tmdb_id in (TOY_STORY, TOY_STORY_2):
            api.app.post_json("/api/user/interactions", {"tmdb_id": tmdb_id, "interaction_type": "liked"},
                              headers=api.auth(fan["token"]))
    assert run_script("nexus-rebuild-similarities", database_url).returncode == 0
    with Session(engine) as session, session.begin():
        session.execute(UserMovieInteraction.__table__.delete())
    done = run_script("nexus-rebuild-similarities", database_url)
    assert done.returncode == 0, done.stderr
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(MovieSimilarity)).scalar_one() == 0


def test_seed_genres_script_commits(database_url, committed):
    from nexus_pyramid.models import Genre
    from nexus_pyramid.movie_source.genres import TMDB_GENRES

    done = run_script("nexus-seed-genres", database_url)
    assert done.returncode == 0, done.stderr
    fresh = create_engine(database_url)
    try:
        with Session(fresh) as session:
            names = set(session.execute(select(Genre.name)).scalars())
    finally:
        fresh.dispose()
    assert names == {g["name"] for g in TMDB_GENRES}


def test_initialize_db_commits_its_seeds(fresh_database_url):
    """nexus-initialize-db in a process of its own: schema, catalog and the id-space label stay."""
    done = run_script("nexus-initialize-db", fresh_database_url)
    assert done.returncode == 0, done.stderr
    fresh = create_engine(fresh_database_url)
    try:
        with Session(fresh) as session:
            assert session.execute(select(func.count()).select_from(Movie)).scalar_one() > 9000
    finally:
        fresh.dispose()
    assert id_space(fresh_database_url) == "movielens"


# -- 2. recommendations never contain an interacted movie ----------------------------------
def test_recommendations_exclude_the_whole_history(api, engine, committed):
    """A user who liked the 250 most popular movies (the oldest likes) and 60 more never gets them back."""
    from nexus_pyramid.services.recommender import rebuild_similarities

    movies = load_catalog(engine)
    by_popularity = [m["id"] for m in sorted(movies, key=lambda m: (-m["popularity"], m["id"]))]
    liked = by_popularity[:250]
    later = by_popularity[1000:1040]
    watched = by_popularity[2000:2020]
    # Other users like overlapping sets, so every liked movie has neighbours among the others.
    for n in range(6):
        other = api.user(email=f"other{n}@example.com")
        add_interactions(engine, uuid.UUID(other["id"]), by_popularity[n * 40:n * 40 + 300])
    with Session(engine) as session, session.begin():
        assert rebuild_similarities(session) > 0

    ann = api.user(email="ann@example.com", date_of_birth="1990-01-01")
    user_id = uuid.UUID(ann["id"])
    add_interactions(engine, user_id, liked)  # the oldest
    add_interactions(engine, user_id, later)
    add_interactions(engine, user_id, watched, kind="watched")  # the newest
    api.app.post_json("/api/user/preferences", {"genre_ids": [28, 12, 878]}, headers=api.auth(ann["token"]))

    interacted = set(liked) | set(later) | set(watched)
    with Session(engine) as session:
        stored = session.execute(select(func.count()).select_from(UserMovieInteraction)
                                 .where(UserMovieInteraction.user_id == user_id)).scalar_one()
    assert stored == len(interacted) == 310

    recommended = []
    for page in (1, 2):
        data = api.app.get("/api/user/recommendations", {"page": page, "per_page": 50},
                           headers=api.auth(ann["token"])).json["data"]
        recommended += [r["movie"]["tmdb_id"] for r in data["results"]]
    assert len(recommended) >= 50
    assert not set(recommended) & interacted


def test_cold_start_fallback_excludes_the_whole_history(api, engine, committed):
    """Without co-occurrence data the popular fallback also skips every interacted movie."""
    movies = load_catalog(engine)
    by_popularity = [m["id"] for m in sorted(movies, key=lambda m: (-m["popularity"], m["id"]))]
    ann = api.user(email="ann@example.com")
    add_interactions(engine, uuid.UUID(ann["id"]), by_popularity[:260], kind="bookmarked")
    data = api.app.get("/api/user/recommendations", {"per_page": 100},
                       headers=api.auth(ann["token"])).json["data"]
    recommended = [r["movie"]["tmdb_id"] for r in data["results"]]
    assert len(recommended) == 100
    assert not set(recommended) & set(by_popularity[:260])


def test_interactions_of_other_users_do_not_exclude(engine, committed, api):
    """The filter is the user's own history: another user's like does not hide a movie."""
    from nexus_pyramid.services.recommender import SqlStore

    load_catalog(engine)
    ann, bob = api.user(email="ann@example.com"), api.user(email="bob@example.com")
    with Session(engine) as session:
        top = SqlStore(session).popular(5)
    add_interactions(engine, uuid.UUID(bob["id"]), top)
    with Session(engine) as session:
        store = SqlStore(session)
        assert store.popular(5, exclude_user=uuid.UUID(ann["id"])) == top
        assert not set(store.popular(5, exclude_user=uuid.UUID(bob["id"]))) & set(top)
        assert store.interacted(uuid.UUID(bob["id"]), top + [99999999]) == set(top)
        assert store.interacted(uuid.UUID(ann["id"]), top) == set()


# -- fixtures -----------------------------------------------------------------------------
@pytest.fixture
def fresh_database_url(tmp_path):
    """An empty database of the test's own (a scratch PostgreSQL database in CI)."""
    from tests.conftest import TEST_DB_URL, recreate_postgres_database

    if not TEST_DB_URL:
        yield f"sqlite:///{tmp_path / 'fresh.sqlite'}"
        return
    from sqlalchemy import make_url, text

    url = make_url(TEST_DB_URL)
    scratch = url.set(database=url.database + "_defects").render_as_string(hide_password=False)
    recreate_postgres_database(scratch)
    yield scratch
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}_defects" WITH (FORCE)'))
    admin.dispose()


# -- 3. the database's movie id space ---------------------------------------------------------
def migrated(url: str) -> str:
    from alembic import command

    from tests.conftest import alembic_config

    command.upgrade(alembic_config(url), "head")
    return url


def start_app(url: str, source: str):
    from nexus_pyramid import make_app
    from tests.conftest import make_settings
    from tests.fake_tmdb import API_KEY

    extra = {"nexus.movie_source": source}
    if source == "tmdb":  # nothing is fetched at start-up: an address where nothing listens will do
        extra.update({"tmdb.base_url": "http://127.0.0.1:9/3", "tmdb.api_key": API_KEY})
    return make_app(make_settings(url, **extra), environ={})


def id_space(url: str):
    from nexus_pyramid.models.app_meta import AppMeta

    engine = create_engine(url)
    try:
        with Session(engine) as session:
            return session.execute(
                select(AppMeta.value).where(AppMeta.key == "movie_id_space")).scalar_one_or_none()
    finally:
        engine.dispose()


@pytest.mark.parametrize("first, other, names", [
    ("catalog", "tmdb", ("MovieLens ids", "'tmdb'", "back to 'catalog'")),
    ("tmdb", "catalog", ("TMDb ids", "'catalog'", "back to 'tmdb'")),
])
def test_the_app_labels_its_database_and_refuses_the_other_source(fresh_database_url, first, other, names):
    from nexus_pyramid.models.app_meta import MovieIdSpaceConflict
    from nexus_pyramid.settings import ConfigurationError

    url = migrated(fresh_database_url)
    assert id_space(url) is None
    start_app(url, first)
    assert id_space(url) == {"catalog": "movielens", "tmdb": "tmdb"}[first]
    start_app(url, first)  # and starts again with the same source

    with pytest.raises(MovieIdSpaceConflict) as refused:
        start_app(url, other)
    assert isinstance(refused.value, ConfigurationError)
    message = str(refused.value)
    for part in (*names, "fresh database", "NEXUS_MOVIE_SOURCE", "nexus-initialize-db"):
        assert part in message, (part, message)
    assert id_space(url) == {"catalog": "movielens", "tmdb": "tmdb"}[first]  # the label never changes


def test_initialize_db_labels_and_refuses_the_other_source(fresh_database_url):
    done = run_script("nexus-initialize-db", fresh_database_url, NEXUS_MOVIE_SOURCE="tmdb",
                      TMDB_BASE_URL="http://127.0.0.1:9/3", TMDB_API_KEY="0" * 32)
    assert done.returncode == 0, done.stderr  # the genre seed waits for TMDb; the label does not
    assert id_space(fresh_database_url) == "tmdb"

    refused = run_script("nexus-initialize-db", fresh_database_url)  # the catalog
    assert refused.returncode != 0
    assert "error:" in refused.stderr and "TMDb ids" in refused.stderr and "'catalog'" in refused.stderr
    assert "NEXUS_MOVIE_SOURCE" in refused.stderr
    engine = create_engine(fresh_database_url)
    try:
        with Session(engine) as session:  # the catalog was not loaded into the TMDb database
            assert session.execute(select(func.count()).select_from(Movie)).scalar_one() == 0
    finally:
        engine.dispose()
    assert id_space(fresh_database_url) == "tmdb"


def test_the_app_starts_when_the_database_is_unreachable_at_start_up(caplog):
    """Not refused, not hung: logged once; requests then meet the database's failure policy."""
    import logging
    import socket

    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with caplog.at_level(logging.WARNING, logger="nexus_pyramid.models.app_meta"):
        app = start_app(f"postgresql://nexus@127.0.0.1:{port}/nexus", "catalog")
    assert app is not None
    warnings = [r.getMessage() for r in caplog.records if r.name == "nexus_pyramid.models.app_meta"]
    assert len(warnings) == 1 and "could not check" in warnings[0]
    assert str(port) not in warnings[0]  # the error's class, not its text (no addresses or secrets)


@pytest.mark.skipif(not TEST_DB_URL, reason="needs NEXUS_TEST_DATABASE_URL (PostgreSQL statement timeouts)")
def test_console_scripts_are_not_cut_by_the_requests_statement_timeout(database_url, committed):
    """A rebuild runs for minutes at scale: scripts get no statement timeout unless the operator sets one."""
    code = ("import sys; from sqlalchemy import text; from nexus_pyramid.scripts.common import bootstrap_app\n"
            "with bootstrap_app(sys.argv[1]) as env, env['request'].tm:\n"
            "    print(env['request'].dbsession.execute(text('SHOW statement_timeout')).scalar())\n")
    env = script_env(database_url)
    default = subprocess.run([sys.executable, "-c", code, DEV_INI], env=env, capture_output=True, text=True,
                             timeout=120)
    assert default.returncode == 0, default.stderr
    assert default.stdout.strip() == "0"
    chosen = subprocess.run([sys.executable, "-c", code, DEV_INI], env={**env, "NEXUS__DB__STATEMENT_TIMEOUT": "600"},
                            capture_output=True, text=True, timeout=120)
    assert chosen.stdout.strip() == "10min", chosen.stderr
