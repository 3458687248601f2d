"""Latency of GET /api/user/recommendations on PostgreSQL at scale.

    NEXUS_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/nexus_bench \\
        .venv/bin/python bench/recs_latency.py [--users 10000 --movies 10000 --interactions 1000000]

Generates (in SQL) users, movies with skewed popularity and 1-3 genres each, and
interactions whose movie choice follows popularity; trains the recommender's model with
the training job (timed; ``--similarities``: rebuilds the co-occurrence table instead); then requests
recommendations for random users through the whole WSGI app (auth, database, recommender,
envelope), once cold (computed) and once warm (per-user cache), and prints percentiles.
The database named in the URL is dropped and created.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402
from webtest import TestApp  # noqa: E402

from nexus_pyramid import make_app  # noqa: E402
from nexus_pyramid.interfaces import ITokenCodec, find_service  # noqa: E402
from nexus_pyramid.jobs.runner import run_here  # noqa: E402
from nexus_pyramid.movie_source.genres import TMDB_GENRES  # noqa: E402
from nexus_pyramid.services.recommender import rebuild_similarities  # noqa: E402
from tests.conftest import alembic_config, make_settings, recreate_postgres_database  # noqa: E402

GENERATE = [
    """INSERT INTO genres (id, name) VALUES {genres}""",
    """INSERT INTO movies (tmdb_id, title, overview, popularity, vote_average, vote_count, adult, created_at,
                           updated_at, release_year)
       SELECT g, 'Movie ' || g, NULL, 1000.0 / g, 5 + (g % 50) / 10.0, 10000 / g + 1, false, now(), now(),
              1950 + g % 70
       FROM generate_series(1, :movies) g""",
    """INSERT INTO movie_genres (movie_id, genre_id)
       SELECT DISTINCT m.id, (ARRAY[{genre_ids}])[1 + ((m.id * k * 7919) % {n_genres})]
       FROM movies m, generate_series(1, 1 + m.id % 3) k""",
    """INSERT INTO users (id, name, email, password_hash, token_version, created_at, updated_at)
       SELECT md5('u' || g)::uuid, 'User ' || g, 'user' || g || '@bench.invalid', '!', 0, now(), now()
       FROM generate_series(1, :users) g""",
    """INSERT INTO user_movie_interactions (user_id, movie_id, interaction_type, created_at)
       SELECT md5('u' || (1 + (g % :users)))::uuid,
              1 + floor(:movies * power(random(), 2.5))::int,
              (ARRAY['liked', 'liked', 'watched', 'bookmarked'])[1 + floor(random() * 4)::int],
              now() - random() * interval '365 days'
       FROM generate_series(1, :interactions * 11 / 10) g
       ON CONFLICT DO NOTHING""",
]


def bench_catalog(path: Path, movies: int) -> None:
    """A catalog data file for the generated movies: the source the recommender also asks."""
    rng = random.Random(7)
    rows = [[m, f"Movie {m}", f"Movie {m}", 1950 + m % 70, [], 5.0, 10, 1000.0 / m] for m in range(1, movies + 1)]
    neighbours = {str(m): [[1 + int(movies * rng.random() ** 2.5), 0.5] for _ in range(20)]
                  for m in range(1, movies + 1)}
    data = {"columns": ["id", "title", "original_title", "year", "genre_ids", "vote_average", "vote_count",
                        "popularity"], "movies": rows,
            "trending": {"day": list(range(1, 1001)), "week": list(range(1, 1001))}, "neighbours": neighbours}
    with gzip.open(path, "wt") as out:
        json.dump(data, out)


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--movies", type=int, default=10_000)
    parser.add_argument("--interactions", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--reuse", action="store_true", help="measure on the database a previous run generated")
    parser.add_argument("--gc-thresholds", default=None,
                        help="nexus.gc_thresholds for the app (default: the app's setting)")
    parser.add_argument("--similarities", action="store_true",
                        help="rebuild the co-occurrence table instead of training the model")
    args = parser.parse_args(argv)
    url = os.environ.get("NEXUS_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/nexus_bench")
    if args.reuse:
        engine = create_engine(url)
        generated = rebuilt = similarities = None
    else:
        engine, generated, similarities, rebuilt = setup(url, args)
    with engine.connect() as conn:
        counts = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar()
                  for t in ("users", "movies", "user_movie_interactions")}
    measure(url, engine, args, counts, generated, similarities, rebuilt)
    return 0


def setup(url, args):
    """Create the database and fill it; rebuild the similarities (timed)."""
    recreate_postgres_database(url)
    from alembic import command

    command.upgrade(alembic_config(url), "head")
    engine = create_engine(url)
    started = time.perf_counter()
    params = {"users": args.users, "movies": args.movies, "interactions": args.interactions}
    genre_ids = [g["id"] for g in TMDB_GENRES]
    with engine.begin() as conn:
        for sql in GENERATE:
            sql = sql.format(genres=", ".join(f"({g['id']}, '{g['name']}')" for g in TMDB_GENRES),
                             genre_ids=", ".join(map(str, genre_ids)), n_genres=len(genre_ids))
            conn.execute(text(sql), params)
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    generated = time.perf_counter() - started
    started = time.perf_counter()
    if args.similarities:  # the co-occurrence table (the fallback before a first training)
        with Session(engine) as session, session.begin():
            session.execute(text("SET LOCAL work_mem = '512MB'"))
            similarities = f"rebuild_similarities: {rebuild_similarities(session)} rows"
        with engine.begin() as conn:
            conn.execute(text("ANALYZE movie_similarities"))
    else:  # the training job, as nexus-worker runs it
        app = make_app(make_settings(url, "", **{"db.statement_timeout": "0"}), environ={})
        done = run_here(app.registry, "train_recommender")
        similarities = f"training job: {done.state}, {done.result}"
    rebuilt = time.perf_counter() - started
    return engine, generated, similarities, rebuilt


def measure(url, engine, args, counts, generated, similarities, rebuilt):
    with tempfile.TemporaryDirectory() as tmp:
        catalog = Path(tmp) / "bench-catalog.json.gz"
        bench_catalog(catalog, args.movies)
        overrides = {"catalog.path": str(catalog)}
        if args.gc_thresholds:
            overrides["nexus.gc_thresholds"] = args.gc_thresholds
        app = make_app(make_settings(url, **overrides), environ={})
        client = TestApp(app)
        codec = find_service(app.registry, ITokenCodec)
        with Session(engine) as session:
            user_ids = [str(u) for u in session.execute(text("SELECT id FROM users")).scalars()]
        rng = random.Random(42)
        chosen = rng.sample(user_ids, min(args.requests, len(user_ids)))
        client.get("/api/user/recommendations",
                   headers={"Authorization": "Bearer " + codec.create_token(chosen[0], typ="access", ver=0)})
        cold, warm, sizes, models = [], [], [], set()
        for user_id in chosen[1:]:
            headers = {"Authorization": "Bearer " + codec.create_token(user_id, typ="access", ver=0)}
            for timings in (cold, warm):
                t0 = time.perf_counter()
                response = client.get("/api/user/recommendations", headers=headers)
                timings.append((time.perf_counter() - t0) * 1000)
            sizes.append(response.json["data"]["total_results"])
            models.add(response.json["meta"]["model"]["version"])
    engine.dispose()

    print(f"PostgreSQL: {counts['users']} users, {counts['movies']} movies, "
          f"{counts['user_movie_interactions']} interactions")
    if rebuilt is not None:
        print(f"generated in {generated:.0f}s; {similarities} in {rebuilt:.1f}s")
    print(f"GET /api/user/recommendations over {len(cold)} users (median {statistics.median(sizes):.0f} results, "
          f"ranked by model version {sorted(models, key=str)}):")
    for label, values in (("cold (computed)", cold), ("warm (cached)", warm)):
        print(f"  {label:<16} p50 {percentile(values, 50):6.1f} ms   p95 {percentile(values, 95):6.1f} ms   "
              f"p99 {percentile(values, 99):6.1f} ms")
    print(f"p95 cold vs the 50 ms target: {percentile(cold, 95) / 50:.2f}x of budget")


if __name__ == "__main__":
    sys.exit(main())
