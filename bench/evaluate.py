"""Offline evaluation of the recommender against strong baselines on MovieLens' real ratings.

    .venv/bin/pip install -e '.[catalog-build,bench]'
    .venv/bin/python bench/evaluate.py [--users N] [--bootstrap 1000]

Protocol (one run): ratings >= 4 are likes. Each user's most recent like is held out (test);
every model is trained on the remaining ratings only. The catalog the served recommender
also reads (its co-occurrence neighbours, popularity, trending) is rebuilt from those
training ratings, and its database holds only training interactions (no leakage).
Hyper-parameters are tuned on a validation split made the same way *inside* the training
ratings (each user's latest remaining like held out), never on the test.

Models, each asked for 10 movies the user has not rated:

  most popular; genre matching (the seed's approach: the user's three favourite genres,
  most popular first); item-kNN (cosine, top-k neighbours); implicit's ALS; EASE^R;
  EASE^R with the user's row weighted by recency (exponential decay by rank, newest
  first); and the served recommender, through its real code path: the training job's code
  (``recommender_model.fit`` on the database's interactions) builds the model, and for each
  user ``user_signal`` reads their interactions from the database and ``Recommender`` with
  ``ModelStore`` ranks them, as ``GET /api/user/recommendations`` does.

Prints HR@10 and NDCG@10 with 95 % bootstrap intervals (users resampled), and paired
bootstrap intervals of the served recommender's NDCG@10 ratio to EASE^R and to the
recency-weighted EASE^R.
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
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from alembic import command  # noqa: E402
from alembic.config import Config  # noqa: E402
from scipy import sparse  # noqa: E402
from scipy.linalg import lapack  # noqa: E402
from sqlalchemy import insert, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from nexus_pyramid import recommender_model  # noqa: E402
from nexus_pyramid.db import get_engine  # noqa: E402
from nexus_pyramid.models import User, UserMovieInteraction  # noqa: E402
from nexus_pyramid.movie_source.cache import CachedMovieSource, CacheStats, make_cache_region  # noqa: E402
from nexus_pyramid.movie_source.catalog import CatalogSource  # noqa: E402
from nexus_pyramid.movie_source.catalog_build import LIKED_RATING, build, load_movielens  # noqa: E402
from nexus_pyramid.movie_source.genres import TMDB_GENRES  # noqa: E402
from nexus_pyramid.services.library import Preferences  # noqa: E402
from nexus_pyramid.services.movies import upsert_movies  # noqa: E402
from nexus_pyramid.services.recommender import ModelStore, Recommender, user_signal  # noqa: E402

K = 10
L2_GRID = (50.0, 100.0, 200.0, 400.0, 800.0)
DECAY_GRID = (0.8, 0.9, 0.95, 0.98, 0.99)
KNN_GRID = (20, 50, 200)
ALS_GRID = [{"factors": f, "regularization": r, "alpha": a} for f in (64, 128) for r in (0.05,) for a in (1.0, 5.0)]
# The served recommender's knobs tried on the validation split: the model's l2 and the
# blend's weights (the defaults first).
SERVED_GRID = [
    {"l2": None, "weights": {}},
    {"l2": None, "weights": {"source": 0.0}},
    {"l2": None, "weights": {"recency": 0.85}},
    {"l2": None, "weights": {"recency": 0.95}},
]


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


def ndcg_hit(ranked: list[int], target: int) -> tuple[float, float]:
    if target in ranked[:K]:
        return 1.0, 1.0 / math.log2(ranked.index(target) + 2)
    return 0.0, 0.0


# -- the matrix baselines -------------------------------------------------------------------------
class Data:
    """The training ratings as matrices: X (users x items, 1 per rating), recency ranks, genres."""

    def __init__(self, train, movies):
        self.users = sorted({r[0] for r in train})
        self.items = sorted({r[1] for r in train})
        self.u_index = {u: i for i, u in enumerate(self.users)}
        self.i_index = {m: i for i, m in enumerate(self.items)}
        rows = [self.u_index[r[0]] for r in train]
        cols = [self.i_index[r[1]] for r in train]
        self.X = sparse.csr_matrix((np.ones(len(train), dtype=np.float32), (rows, cols)),
                                   shape=(len(self.users), len(self.items)))
        self.X.data[:] = 1.0
        self.history = defaultdict(list)  # user -> [movie] newest first
        self.liked = defaultdict(list)
        for user, movie, rating, ts in sorted(train, key=lambda r: (-r[3], r[1])):
            self.history[user].append(movie)
            if rating >= LIKED_RATING:
                self.liked[user].append(movie)
        counts = Counter(r[1] for r in train)
        self.by_popularity = sorted(counts, key=lambda m: (-counts[m], m))
        self.genres_of = {m: movies[m]["genres"] for m in movies}

    def top(self, user, scores) -> list[int]:
        seen = [self.i_index[m] for m in self.history[user]]
        scores = np.array(scores, dtype=np.float64, copy=True)
        scores[seen] = -np.inf
        best = np.argpartition(-scores, K)[:K]
        best = best[np.argsort(-scores[best], kind="stable")]
        return [self.items[i] for i in best]

    def popular(self, user):
        seen = set(self.history[user])
        return [m for m in self.by_popularity if m not in seen][:K]

    def genre(self, user):
        seen = set(self.history[user])
        favorite = {g for g, _n in Counter(g for m in self.liked[user] for g in self.genres_of[m]).most_common(3)}
        return [m for m in self.by_popularity if m not in seen and favorite & set(self.genres_of[m])][:K]


def ease_full(X, l2: float) -> np.ndarray:
    """EASE^R's dense B (items x items, float32)."""
    n = X.shape[1]
    gram = (X.T.tocsr() @ X).toarray().astype(np.float32)
    gram[np.diag_indices(n)] += l2
    factor, info = lapack.spotrf(gram, lower=1, overwrite_a=1, clean=1)
    inverse, info2 = lapack.spotri(factor, lower=1, overwrite_c=1)
    assert info == 0 and info2 == 0
    inverse = np.tril(inverse) + np.tril(inverse, -1).T
    B = -inverse / np.diag(inverse)[None, :]
    np.fill_diagonal(B, 0.0)
    return B


def knn(X, k: int) -> np.ndarray:
    """Item-item cosine similarity, each item's top ``k`` kept."""
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=0)).ravel()) + 1e-9
    S = (X.T.tocsr() @ X).toarray().astype(np.float32) / norms[:, None] / norms[None, :]
    np.fill_diagonal(S, 0.0)
    if k < S.shape[1]:
        cut = np.argpartition(-S, k, axis=1)[:, k:]
        np.put_along_axis(S, cut, 0.0, axis=1)
    return S


def user_rows(data: Data, users, decay: float | None = None) -> np.ndarray:
    rows = np.zeros((len(users), len(data.items)), dtype=np.float32)
    for r, user in enumerate(users):
        for rank, movie in enumerate(data.history[user]):
            rows[r, data.i_index[movie]] = 1.0 if decay is None else decay ** rank
    return rows


def rank_matrix(data, users, B, decay=None) -> dict:
    result = {}
    for start in range(0, len(users), 256):
        chunk = users[start:start + 256]
        scores = user_rows(data, chunk, decay) @ B
        for r, user in enumerate(chunk):
            result[user] = data.top(user, scores[r])
    return result


def als_rankings(data, users, params) -> dict:
    from implicit.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(iterations=15, random_state=7, **{
            k: v for k, v in params.items() if k != "alpha"}, alpha=params["alpha"])
        model.fit(data.X, show_progress=False)
        ids = np.array([data.u_index[u] for u in users])
        best, _scores = model.recommend(ids, data.X[ids], N=K, filter_already_liked_items=True)
    return {user: [data.items[i] for i in best[r]] for r, user in enumerate(users)}


# -- the served recommender ---------------------------------------------------------------------------
def setup_database(path: Path, catalog: CatalogSource, train):
    url = f"sqlite:///{path}"
    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "alembic"))
    cfg.attributes["url"] = url
    command.upgrade(cfg, "head")
    engine = get_engine({"sqlalchemy.url": url})
    names = {g["id"]: g["name"] for g in TMDB_GENRES}
    users = {u: uuid.uuid5(uuid.NAMESPACE_OID, f"movielens-{u}") for u in {r[0] for r in train}}
    now = datetime.now(timezone.utc)
    with Session(engine) as session, session.begin():
        upsert_movies(session, catalog.all_movies(), names)
        ids = dict(session.execute(text("SELECT tmdb_id, id FROM movies")).all())
        session.execute(insert(User), [
            {"id": uid, "name": f"MovieLens {u}", "email": f"ml{u}@example.invalid", "password_hash": "!",
             "token_version": 0, "created_at": now, "updated_at": now} for u, uid in users.items()])
        session.execute(insert(UserMovieInteraction), [
            {"user_id": users[u], "movie_id": ids[m], "interaction_type": kind(rating),
             "created_at": datetime.fromtimestamp(ts, timezone.utc)}
            for u, m, rating, ts in train if m in ids])
    return engine, users


class Served:
    """The recommender as deployed, over a database of the given training ratings."""

    def __init__(self, tmp: Path, name: str, movies, train):
        data_file = tmp / f"catalog-{name}.json.gz"
        with gzip.open(data_file, "wt", encoding="utf-8") as out:
            json.dump(build(movies, train), out)
        self.catalog = CatalogSource(data_file)
        self.engine, self.users = setup_database(tmp / f"{name}.sqlite", self.catalog, train)
        region, hard_limit = make_cache_region({}, CacheStats())
        self.source = CachedMovieSource(self.catalog, region, {}, hard_limit)
        self.models = {}

    def model(self, l2: float):
        """Trained by the training job's own code on the database's interactions."""
        if l2 not in self.models:
            with Session(self.engine) as session:
                fitted = recommender_model.fit(recommender_model.read_training_rows(session), l2=l2)
            item_ids, indptr, indices, data, _stats = fitted
            blob = recommender_model.to_bytes(item_ids, indptr, indices, data, {})
            self.models[l2] = recommender_model.from_bytes(blob, 1, datetime.now(timezone.utc))
        return self.models[l2]

    def rankings(self, users, l2: float, weights: dict) -> dict:
        result = {}
        model = self.model(l2)
        no_preferences = Preferences([], [], [])
        with Session(self.engine) as session:
            recommender = Recommender(ModelStore(session, model), self.source, weights)
            for user in users:
                person = SimpleNamespace(id=self.users[user], date_of_birth=None)
                signal = user_signal(session, person, no_preferences)
                signal.allow_adult = True
                result[user] = [r.tmdb_id for r in recommender.recommend(signal, K)]
        return result


# -- evaluation -------------------------------------------------------------------------------------
def scores(rankings: dict, held_out: dict, users) -> np.ndarray:
    """(users x 2) hits and NDCG."""
    return np.array([ndcg_hit(rankings.get(u, []), held_out[u]) for u in users])


def bootstrap(values: np.ndarray, draws: np.ndarray) -> tuple[float, float]:
    means = values[draws].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def ratio_interval(a: np.ndarray, b: np.ndarray, draws: np.ndarray) -> tuple[float, float, float]:
    ratios = a[draws].mean(axis=1) / np.maximum(b[draws].mean(axis=1), 1e-12)
    return float(a.mean() / max(b.mean(), 1e-12)), float(np.percentile(ratios, 2.5)), float(np.percentile(ratios, 97.5))


def tune(name, candidates, evaluate, log):
    """The candidate with the best validation NDCG@10."""
    best, best_value = None, -1.0
    for candidate in candidates:
        value = evaluate(candidate)
        log(f"  validation {name} {json.dumps(candidate)}: NDCG@10 {value:.4f}")
        if value > best_value:
            best, best_value = candidate, value
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=0, help="evaluate only the first N users (0 = all)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--quiet", action="store_true", help="no validation lines")
    args = parser.parse_args(argv)
    started = time.perf_counter()

    def log(line):
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    movies, ratings = load_movielens()
    train, held_out = split(ratings)
    valid_train, valid_held = split(train)  # tuning happens inside the training ratings only
    if args.users:
        held_out = dict(sorted(held_out.items())[:args.users])
        valid_held = dict(sorted(valid_held.items())[:args.users])
    test_users, valid_users = sorted(held_out), sorted(valid_held)
    data, vdata = Data(train, movies), Data(valid_train, movies)

    def ndcg(rankings, held, users):
        return float(scores(rankings, held, users)[:, 1].mean())

    # Tuning on the validation split.
    l2 = tune("EASE^R", [{"l2": v} for v in L2_GRID],
              lambda c: ndcg(rank_matrix(vdata, valid_users, ease_full(vdata.X, c["l2"])), valid_held, valid_users),
              log)["l2"]
    B_valid = ease_full(vdata.X, l2)
    decay = tune("recency EASE^R", [{"decay": d} for d in DECAY_GRID],
                 lambda c: ndcg(rank_matrix(vdata, valid_users, B_valid, c["decay"]), valid_held, valid_users),
                 log)["decay"]
    del B_valid
    k = tune("item-kNN", [{"k": v} for v in KNN_GRID],
             lambda c: ndcg(rank_matrix(vdata, valid_users, knn(vdata.X, c["k"])), valid_held, valid_users), log)["k"]
    als = tune("ALS", ALS_GRID, lambda c: ndcg(als_rankings(vdata, valid_users, c), valid_held, valid_users), log)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        served_valid = Served(tmp, "valid", movies, valid_train)
        grid = [{"l2": c["l2"] or l2, "weights": c["weights"]} for c in SERVED_GRID]
        grid += [{"l2": v, "weights": {}} for v in L2_GRID if v != l2 and abs(math.log(v / l2)) < 1.1]
        served_cfg = tune("served", grid, lambda c: ndcg(served_valid.rankings(valid_users, c["l2"], c["weights"]),
                                                         valid_held, valid_users), log)
        served_valid.engine.dispose()

        # The test: every model trained on all training ratings with its tuned parameters.
        served = Served(tmp, "test", movies, train)
        B = ease_full(data.X, l2)
        runs = {
            "most popular": {u: data.popular(u) for u in test_users},
            "genre matching (the seed's approach)": {u: data.genre(u) for u in test_users},
            f"item-kNN cosine (k={k})": rank_matrix(data, test_users, knn(data.X, k)),
            f"implicit ALS ({als['factors']} factors, alpha {als['alpha']:g})": als_rankings(data, test_users, als),
            f"EASE^R (l2={l2:g})": rank_matrix(data, test_users, B),
            f"EASE^R, user row weighted by recency (decay {decay:g})": rank_matrix(data, test_users, B, decay),
            "Nexus served recommender": served.rankings(test_users, served_cfg["l2"], served_cfg["weights"]),
        }
        served.engine.dispose()

    rng = np.random.default_rng(2026)
    draws = rng.integers(0, len(test_users), size=(args.bootstrap, len(test_users)))
    results = {name: scores(r, held_out, test_users) for name, r in runs.items()}
    print(f"Offline evaluation: MovieLens latest-small, {len(test_users)} users, likes = rating >= 4, "
          f"each user's latest like held out, K = {K}; tuned on a validation split inside the training ratings; "
          f"95 % bootstrap intervals ({args.bootstrap} resamples of users)")
    print()
    print("| model, same run | NDCG@10 [95 % CI] | HR@10 [95 % CI] |")
    print("|---|---|---|")
    for name, values in results.items():
        lo, hi = bootstrap(values[:, 1], draws)
        hlo, hhi = bootstrap(values[:, 0], draws)
        print(f"| {name} | {values[:, 1].mean():.4f} [{lo:.3f}, {hi:.3f}] | "
              f"{values[:, 0].mean():.3f} [{hlo:.3f}, {hhi:.3f}] |")
    print()
    served_ndcg = results["Nexus served recommender"][:, 1]
    ease_name = next(n for n in results if n.startswith("EASE^R (l2"))
    recency_name = next(n for n in results if n.startswith("EASE^R, user row"))
    ok = True
    for name, target in ((ease_name, 1.2), (recency_name, 1.0)):
        ratio, lo, hi = ratio_interval(served_ndcg, results[name][:, 1], draws)
        met = ratio >= target if target > 1.0 else ratio > target
        ok = ok and met
        print(f"served / {name}: NDCG@10 {ratio:.2f}x [95 % CI {lo:.2f}, {hi:.2f}] "
              f"(target {'>=' if target > 1 else '>'} {target:g}x: {'met' if met else 'NOT met'})")
    print(f"served configuration (chosen on validation): l2 {served_cfg['l2']:g}, "
          f"weights {json.dumps(served_cfg['weights']) or 'defaults'}")
    print(f"({time.perf_counter() - started:.0f}s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
