"""Training time and memory of the recommender's model at several sizes (one process per size).

    .venv/bin/python bench/training.py [--sizes 250000,500000,1000000] [--users 10000 --movies 10000]
    NEXUS_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/nexus_h14_bench \\
        .venv/bin/python bench/training.py --job

Each size runs in a fresh process: interactions drawn with a skewed popularity (like real
catalogues: a few movies get most of the interactions) and a mix of likes, watches and
bookmarks, then ``recommender_model.fit`` (what the training job runs) with a progress bar.
Prints wall time per phase and the process's peak resident memory.

``--job`` runs the real training job end to end at the largest size: the interactions are
written to PostgreSQL (the database in NEXUS_BENCH_DATABASE_URL is dropped and created),
then the job reads them, trains and stores the model version (``jobs.runner.run_here``, as a worker runs it).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402


def interactions(users: int, movies: int, count: int, seed: int = 7):
    rng = np.random.default_rng(seed)
    user = rng.integers(0, users, count)
    movie = 1 + np.floor(movies * rng.random(count) ** 2.5).astype(np.int64)
    kind = rng.choice(np.array(["liked", "watched", "bookmarked"]), count, p=[0.5, 0.3, 0.2])
    return user, movie, kind


class Bar:
    def __init__(self, label: str):
        self.label, self.started, self.last = label, time.perf_counter(), -1

    def __call__(self, fraction: float):
        filled = int(30 * fraction)
        if filled != self.last:
            self.last = filled
            print(f"\r  {self.label} [{'#' * filled}{'.' * (30 - filled)}] {fraction:5.0%} "
                  f"{time.perf_counter() - self.started:5.1f}s", end="", file=sys.stderr, flush=True)
        if fraction >= 1.0:
            print(file=sys.stderr)


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one_size(users: int, movies: int, count: int) -> dict:
    from nexus_pyramid import recommender_model

    user, movie, kind = interactions(users, movies, count)
    rows = zip(user.tolist(), movie.tolist(), kind.tolist())
    started = time.perf_counter()
    X, item_ids = recommender_model.interaction_matrix(rows)
    matrix = time.perf_counter() - started
    bar = Bar(f"{count:>9,} interactions")
    item_ids, indptr, indices, data, stats = recommender_model.fit_matrix(X, item_ids, progress=bar)
    bar(1.0)
    total = time.perf_counter() - started
    blob = recommender_model.to_bytes(item_ids, indptr, indices, data, {})
    return {"interactions": count, "distinct": stats["interactions"], "users": stats["users"],
            "items": stats["items"], "matrix_s": round(matrix, 2), "total_s": round(total, 2),
            "peak_mib": round(peak_mib()), "artifact_mib": round(len(blob) / 2 ** 20, 1)}


def job(users: int, movies: int, count: int) -> dict:
    """The real job on PostgreSQL: read, train, store."""
    from sqlalchemy import create_engine, text

    from nexus_pyramid import make_app
    from nexus_pyramid.jobs.runner import run_here
    from tests.conftest import alembic_config, make_settings, recreate_postgres_database
    from alembic import command

    url = os.environ["NEXUS_BENCH_DATABASE_URL"]
    recreate_postgres_database(url)
    command.upgrade(alembic_config(url), "head")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("""INSERT INTO movies (tmdb_id, title, popularity, vote_average, vote_count, adult,
                                                created_at, updated_at)
                             SELECT g, 'Movie ' || g, 1000.0 / g, 6, 10, false, now(), now()
                             FROM generate_series(1, :m) g"""), {"m": movies})
        conn.execute(text("""INSERT INTO users (id, name, email, password_hash, token_version, created_at, updated_at)
                             SELECT md5('u' || g)::uuid, 'User ' || g, 'user' || g || '@bench.invalid', '!', 0,
                                    now(), now() FROM generate_series(0, :u - 1) g"""), {"u": users})
        conn.execute(text("""INSERT INTO user_movie_interactions (user_id, movie_id, interaction_type, created_at)
                             SELECT md5('u' || (g % :u))::uuid, 1 + floor(:m * power(random(), 2.5))::int,
                                    (ARRAY['liked', 'liked', 'watched', 'bookmarked'])[1 + floor(random() * 4)::int],
                                    now() - random() * interval '365 days'
                             FROM generate_series(1, :n * 11 / 10) g ON CONFLICT DO NOTHING"""),
                     {"u": users, "m": movies, "n": count})
        stored = conn.execute(text("SELECT COUNT(*) FROM user_movie_interactions")).scalar_one()
    engine.dispose()
    app = make_app(make_settings(url, "", **{"db.statement_timeout": "0"}), environ={})
    started = time.perf_counter()
    done = run_here(app.registry, "train_recommender")
    elapsed = time.perf_counter() - started
    return {"interactions": stored, "state": done.state, "job_s": round(elapsed, 2), "peak_mib": round(peak_mib()),
            "result": done.result, "error": done.error}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--movies", type=int, default=10_000)
    parser.add_argument("--sizes", default="250000,500000,1000000")
    parser.add_argument("--job", action="store_true", help="the real job on PostgreSQL at the largest size")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child process: one size
    parser.add_argument("--one-job", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(one_size(args.users, args.movies, args.one)))
        return 0
    if args.one_job:
        print(json.dumps(job(args.users, args.movies, args.one_job)))
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    results = []
    for size in sizes:
        out = subprocess.run([sys.executable, __file__, "--users", str(args.users), "--movies", str(args.movies),
                              "--one", str(size)], stdout=subprocess.PIPE, text=True, check=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"Training the EASE^R model (recommender_model.fit), {args.users:,} users x {args.movies:,} movies, "
          f"{os.cpu_count()} CPUs; one process per size")
    print()
    print("| interactions drawn | distinct (user, movie) | movies in the model | matrix build | total | peak memory "
          "| artifact |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['interactions']:,} | {r['distinct']:,} | {r['items']:,} | {r['matrix_s']:.1f} s | "
              f"{r['total_s']:.1f} s | {r['peak_mib']:,} MiB | {r['artifact_mib']} MiB |")
    if len(results) > 1:
        first, last = results[0], results[-1]
        print(f"\n{last['interactions'] / first['interactions']:.0f}x the interactions: "
              f"{last['total_s'] / first['total_s']:.2f}x the time, {last['peak_mib'] / first['peak_mib']:.2f}x the memory")
    if args.job:
        out = subprocess.run([sys.executable, __file__, "--users", str(args.users), "--movies", str(args.movies),
                              "--one-job", str(sizes[-1])], stdout=subprocess.PIPE, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"\nThe real job on PostgreSQL ({r['interactions']:,} interactions stored): {r['state']} in "
              f"{r['job_s']:.1f} s (read, train, store), peak memory {r['peak_mib']:,} MiB; result {r['result']}"
              + (f"; error {r['error']}" if r["error"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
