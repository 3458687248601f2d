"""Offline evaluation of the recommender on MovieLens' real ratings (leave-last-liked-out).

    .venv/bin/pip install -e '.[catalog-build]'
    .venv/bin/python bench/evaluate.py

Ratings >= 4 are "liked" interactions, lower ratings "watched" ones. For each user with at least two, the most recent
liked movie is held out. Every input of every model is built from the remaining
(training) ratings only: the catalog's co-occurrence neighbours and popularity are
rebuilt without the held-out ratings, and the database the recommender reads holds only
training interactions (no leakage). Models, each asked for 10 movies the user has not
interacted with:

  (a) most-popular;
  (b) the design's first idea: movies of the user's favourite genres (the three most
      frequent among their likes), most popular first;
  (c) ours: ``nexus_pyramid.services.recommender`` -- the same code the API runs, reading
      the same tables through ``SqlStore`` and the same cached movie source.

Prints HR@10 and NDCG@10 per model and the ratio (c)/(b).
"""
from __future__ import annotations

import argparse
import gzip
import json
import math
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from alembic import command  # noqa: E402
from alembic.config import Config  # noqa: E402
from sqlalchemy import insert  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from nexus_pyramid.db import get_engine  # noqa: E402
from nexus_pyramid.models import User, UserMovieInteraction  # noqa: E402
from nexus_pyramid.movie_source.cache import CachedMovieSource, CacheStats, make_cache_region  # noqa: E402
from nexus_pyramid.movie_source.catalog import CatalogSource  # noqa: E402
from nexus_pyramid.movie_source.catalog_build import LIKED_RATING, build, load_movielens  # noqa: E402
from nexus_pyramid.movie_source.genres import TMDB_GENRES  # noqa: E402
from nexus_pyramid.services.movies import upsert_movies  # noqa: E402
from nexus_pyramid.services.recommender import Recommender, SqlStore, UserSignal  # noqa: E402

K = 10


def split(ratings):
    """(training ratings, {user: held-out movie}) holding out each user's most recent like."""
    liked = defaultdict(list)
    for user, movie, rating, ts in ratings:
        if rating >= LIKED_RATING:
            liked[user].append((ts, movie))
    held_out = {}
    for user, items in liked.items():
        if len(items) >= 2:
            held_out[user] = max(items)[1]
    train = [r for r in ratings if held_out.get(r[0]) != r[1]]
    return train, held_out


def kind(rating: float) -> str:
    return "liked" if rating >= LIKED_RATING else "watched"


def metrics(ranked: list[int], target: int) -> tuple[float, float]:
    if target in ranked[:K]:
        return 1.0, 1.0 / math.log2(ranked.index(target) + 2)
    return 0.0, 0.0


def setup_database(path: Path, catalog: CatalogSource, train, movies):
    url = f"sqlite:///{path}"
    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "alembic"))
    cfg.attributes["url"] = url
    command.upgrade(cfg, "head")
    engine = get_engine({"sqlalchemy.url": url})
    names = {g["id"]: g["name"] for g in TMDB_GENRES}
    users = {u: uuid.uuid5(uuid.NAMESPACE_OID, f"movielens-{u}") for u in {r[0] for r in train}}
    with Session(engine) as session, session.begin():
        upsert_movies(session, catalog.all_movies(), names)
        ids = dict(session.execute(__import__("sqlalchemy").text("SELECT tmdb_id, id FROM movies")).all())
        session.execute(insert(User), [
            {"id": uid, "name": f"MovieLens {u}", "email": f"ml{u}@example.invalid", "password_hash": "!",
             "token_version": 0, "created_at": datetime.now(timezone.utc), "updated_at": datetime.now(timezone.utc)}
            for u, uid in users.items()])
        session.execute(insert(UserMovieInteraction), [
            {"user_id": users[u], "movie_id": ids[m], "interaction_type": kind(rating),
             "created_at": datetime.fromtimestamp(ts, timezone.utc)}
            for u, m, rating, ts in train if m in ids])
    return engine, users


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=0, help="evaluate only the first N users (0 = all)")
    parser.add_argument("--weights", action="append", default=[],
                        help='recommender weight overrides to compare, e.g. {"recency": 0.1}; repeatable')
    args = parser.parse_args(argv)
    started = time.perf_counter()
    movies, ratings = load_movielens()
    train, held_out = split(ratings)
    if args.users:
        held_out = dict(sorted(held_out.items())[:args.users])

    with tempfile.TemporaryDirectory() as tmp:
        data_file = Path(tmp) / "catalog-train.json.gz"
        with gzip.open(data_file, "wt", encoding="utf-8") as out:
            json.dump(build(movies, train), out)
        catalog = CatalogSource(data_file)
        engine, users = setup_database(Path(tmp) / "eval.sqlite", catalog, train, movies)

        from nexus_pyramid.services.recommender import rebuild_similarities

        with Session(engine) as session, session.begin():
            rebuild_similarities(session)

        region, hard_limit = make_cache_region({}, CacheStats())
        source = CachedMovieSource(catalog, region, {}, hard_limit)
        popularity = {m: r["popularity"] for m, r in catalog._data["movies"].items()}
        by_popularity = sorted(popularity, key=lambda m: (-popularity[m], m))
        genres_of = {m: r["genre_ids"] for m, r in catalog._data["movies"].items()}
        titles = {m: r["title"] for m, r in catalog._data["movies"].items()}
        liked_train, history = defaultdict(list), defaultdict(list)
        for user, movie, rating, ts in sorted(train, key=lambda r: (-r[3], r[1])):
            history[user].append((movie, kind(rating)))
            if rating >= LIKED_RATING:
                liked_train[user].append(movie)

        variants = [json.loads(w) for w in args.weights] or [{}]
        totals = {name: [0.0, 0.0] for name in ("popular", "genre")}
        totals.update({f"ours{i}": [0.0, 0.0] for i in range(len(variants))})
        with Session(engine) as session:
            store = SqlStore(session)
            recommenders = [Recommender(store, source, weights) for weights in variants]
            for user, target in held_out.items():
                # Every model skips what the user already rated; favourite genres come from likes.
                seen = {m for m, _kind in history[user]}
                popular = [m for m in by_popularity if m not in seen][:K]
                favorite = {g for g, _n in Counter(g for m in liked_train[user] for g in genres_of[m]).most_common(3)}
                genre = [m for m in by_popularity if m not in seen and favorite & set(genres_of[m])][:K]
                signal = UserSignal(interactions=[(m, titles[m], k) for m, k in history[user]], allow_adult=True)
                runs = [("popular", popular), ("genre", genre)]
                runs += [(f"ours{i}", [r.tmdb_id for r in rec.recommend(signal, K)]) for i, rec in enumerate(recommenders)]
                for name, ranked in runs:
                    hit, gain = metrics(ranked, target)
                    totals[name][0] += hit
                    totals[name][1] += gain
        engine.dispose()

    n = len(held_out)
    print(f"Offline evaluation: MovieLens latest-small, {n} users, leave-last-liked-out, K={K}")
    print(f"{'model':<34} {'HR@10':>8} {'NDCG@10':>8}")
    labels = {"popular": "(a) most popular", "genre": "(b) favourite genres by popularity"}
    for i, weights in enumerate(variants):
        labels[f"ours{i}"] = "(c) nexus recommender" + (f" {json.dumps(weights)}" if weights else "")
    for name, (hits, gains) in totals.items():
        print(f"{labels[name]:<34} {hits / n:>8.4f} {gains / n:>8.4f}")
    ok = True
    for i in range(len(variants)):
        ratio_hr = totals[f"ours{i}"][0] / max(totals["genre"][0], 1e-9)
        ratio_ndcg = totals[f"ours{i}"][1] / max(totals["genre"][1], 1e-9)
        ok = ok and min(ratio_hr, ratio_ndcg) >= 2.0
        print(f"ratio (c{i if len(variants) > 1 else ''})/(b): HR@10 {ratio_hr:.2f}x, NDCG@10 {ratio_ndcg:.2f}x"
              "  (target >= 2.0)")
    print(f"({time.perf_counter() - started:.0f}s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
