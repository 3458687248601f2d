"""The recommender's scoring on a small hand-made data set whose right answers are known."""
from __future__ import annotations

from datetime import date

from nexus_pyramid.services.recommender import (COLD_START_REASON, MovieInfo, Recommender, UserSignal,
                                                can_see_adult, franchise_key)

SCIFI, DRAMA, COMEDY, ACTION = 878, 18, 35, 28


class Store:
    """An in-memory stand-in for SqlStore with the same methods."""

    def __init__(self, movies, neighbours):
        self._movies = {m.tmdb_id: m for m in movies}
        self._neighbours = neighbours

    def neighbours(self, ids, per_movie=50, exclude_user=None):
        return {i: self._neighbours.get(i, [])[:per_movie] for i in ids if i in self._neighbours}

    def movies(self, ids):
        return {i: self._movies[i] for i in ids if i in self._movies}

    def by_genres(self, genre_ids, limit, exclude_user=None):
        hits = [m for m in self._movies.values() if set(genre_ids) & set(m.genre_ids)]
        return [m.tmdb_id for m in sorted(hits, key=lambda m: -m.popularity)][:limit]

    def popular(self, limit, exclude_user=None):
        return [m.tmdb_id for m in sorted(self._movies.values(), key=lambda m: -m.popularity)][:limit]

    def interacted(self, user_id, ids):
        return set()  # users here exist only as their UserSignal

    def vote_prior(self):
        return 6.0, 10.0


def movie(tmdb_id, title, genres, popularity=10.0, vote=7.0, votes=100, adult=False):
    return MovieInfo(tmdb_id, title, popularity, vote, votes, adult, genres)


MOVIES = [
    movie(1, "Space One", [SCIFI]), movie(2, "Space Two", [SCIFI]), movie(3, "Robots", [SCIFI, ACTION]),
    movie(4, "Tears", [DRAMA], popularity=50), movie(5, "Laughs", [COMEDY], popularity=90),
    movie(6, "Space Three", [SCIFI], popularity=5), movie(7, "Grown-up Space", [SCIFI], adult=True),
    movie(8, "Galaxy Quest", [SCIFI, COMEDY], popularity=20),
]
NEIGHBOURS = {
    1: [(2, 0.9), (3, 0.6), (7, 0.95), (4, 0.1)],
    2: [(1, 0.9), (3, 0.7), (6, 0.3)],
}


def test_cooccurrence_decides_and_everything_seen_is_excluded():
    rec = Recommender(Store(MOVIES, NEIGHBOURS), weights={"diversity": 0})
    picks = rec.recommend(UserSignal(interactions=[(1, "Space One", "liked")]), 5)
    ids = [p.tmdb_id for p in picks]
    assert ids[0] == 2 and ids[1] == 3  # strongest co-occurrence first
    assert 1 not in ids
    assert picks[0].reasons == ["Because you liked Space One"]
    assert all(p.score >= q.score for p, q in zip(picks, picks[1:]))


def test_adult_titles_need_an_adult():
    store = Store(MOVIES, NEIGHBOURS)
    minor = Recommender(store).recommend(UserSignal(interactions=[(1, "Space One", "liked")]), 10)
    assert 7 not in [p.tmdb_id for p in minor]
    adult = Recommender(store).recommend(UserSignal(interactions=[(1, "Space One", "liked")], allow_adult=True), 10)
    assert [p.tmdb_id for p in adult][0] == 7
    assert can_see_adult(date(2000, 1, 1), today=date(2018, 1, 1))
    assert not can_see_adult(date(2000, 1, 2), today=date(2018, 1, 1))
    assert not can_see_adult(None)


def test_liked_weighs_more_than_bookmarked():
    store = Store(MOVIES, {10: [(4, 0.5)], 11: [(5, 0.5)]})
    signal = UserSignal(interactions=[(10, "Drama Seed", "bookmarked"), (11, "Comedy Seed", "liked")])
    picks = Recommender(store, weights={"popularity": 0, "quality": 0, "recency": 1.0}).recommend(signal, 2)  # no decay
    assert [p.tmdb_id for p in picks] == [5, 4]
    assert picks[1].reasons == ["Because you saved Drama Seed"]


def test_favorite_genres_alone_give_genre_matches_with_reasons():
    signal = UserSignal(favorite_genres={COMEDY: "Comedy"})
    picks = Recommender(Store(MOVIES, {})).recommend(signal, 3)
    assert [p.tmdb_id for p in picks][:2] == [5, 8]
    assert picks[0].reasons == ["Matches your favorite genre: Comedy"]


def test_cold_start_gets_popular_movies_and_says_so():
    picks = Recommender(Store(MOVIES, NEIGHBOURS)).recommend(UserSignal(), 3)
    assert [p.tmdb_id for p in picks] == [5, 4, 8]
    assert all(p.reasons == [COLD_START_REASON] for p in picks)


def test_diversity_breaks_up_a_franchise():
    movies = [movie(100 + i, f"Saga Part {i}", [SCIFI], popularity=10) for i in range(6)]
    movies += [movie(200, "Other Film", [DRAMA], popularity=10)]
    neighbours = {1: [(100 + i, 0.9 - i * 0.01) for i in range(6)] + [(200, 0.5)]}
    store = Store(movies + [MOVIES[0]], neighbours)
    plain = Recommender(store, weights={"diversity": 0}).recommend(UserSignal(interactions=[(1, "S", "liked")]), 4)
    diverse = Recommender(store, weights={"diversity": 1}).recommend(UserSignal(interactions=[(1, "S", "liked")]), 4)
    assert 200 not in [p.tmdb_id for p in plain]
    assert 200 in [p.tmdb_id for p in diverse]
    assert franchise_key("The Matrix Reloaded") == franchise_key("Matrix: Revolutions") == "matrix"


def test_the_fold_in_is_the_users_row_times_the_model():
    """ModelStore.fold_in against the dense product x_u B: the best-scored movies the user did
    not interact with, their scores, and each one's two largest positive contributors."""
    from datetime import datetime, timezone

    import numpy as np
    import pytest

    from nexus_pyramid.recommender_model import Model
    from nexus_pyramid.services.recommender import ModelStore

    rng = np.random.default_rng(5)
    n = 60
    item_ids = np.arange(1, n + 1, dtype=np.int64) * 7
    columns = [np.sort(rng.choice(n, 12, replace=False)) for _ in range(n)]
    indptr = np.concatenate([[0], np.cumsum([len(c) for c in columns])]).astype(np.int64)
    indices = np.concatenate(columns).astype(np.int32)
    data = rng.uniform(0.01, 1.0, len(indices)).astype(np.float32)
    model = Model(1, datetime.now(timezone.utc), item_ids, indptr, indices, data)
    dense = np.zeros((n, n))
    for row in range(n):
        dense[row, indices[indptr[row]:indptr[row + 1]]] = data[indptr[row]:indptr[row + 1]]

    positive = {int(item_ids[r]): w for r, w in [(3, 1.0), (10, 0.9), (17, 0.81), (25, 0.4), (40, 0.73)]}
    positive[5] = 1.0  # not in the model: no signal
    negative = {int(item_ids[50]): 0.5}
    scores, contributors = ModelStore(None, model).fold_in(positive, negative, None, 15)

    weights = np.zeros(n)
    for tmdb_id, weight in [*positive.items(), *((t, -w) for t, w in negative.items())]:
        if tmdb_id in item_ids:
            weights[int(np.searchsorted(item_ids, tmdb_id))] = weight
    total = weights @ dense
    total[[int(np.searchsorted(item_ids, t)) for t in positive if t in item_ids]] = 0.0
    best = [r for r in np.argsort(-total)[:15] if total[r] > 0]
    assert sorted(scores) == sorted(int(item_ids[r]) for r in best) and len(scores) == 15
    for r in best:
        tmdb_id = int(item_ids[r])
        assert scores[tmdb_id] == pytest.approx(total[r], rel=1e-5)
        shares = sorted(((weights[s] * dense[s, r], int(item_ids[s])) for s in range(n) if weights[s] * dense[s, r] > 0),
                        reverse=True)[:2]
        assert [seed for seed, _value in contributors[tmdb_id]] == [seed for _value, seed in shares]
        assert [value for _seed, value in contributors[tmdb_id]] == pytest.approx([value for value, _s in shares],
                                                                                  rel=1e-5)


def test_diversity_reaches_as_far_as_its_window_and_no_further():
    """Each pick is the best of the first 60 movies not yet picked: the third pick may be the
    62nd movie by score (two picked before it), never the 63rd."""
    saga = [(1.0 - i / 1000, movie(1000 + i, f"Saga Part {i}", [SCIFI])) for i in range(62)]
    other = (0.5, movie(2000, "Other Film", [DRAMA]))
    picks = Recommender._diversify(saga[:61] + [other], 3, 1.0)  # the other film 62nd
    assert [m.tmdb_id for _value, m in picks] == [1000, 1001, 2000]
    assert [value for value, _m in picks] == [1.0, round(0.999 * 0.93 * 0.6, 4), 0.5]
    picks = Recommender._diversify(saga + [other], 3, 1.0)  # 63rd: out of reach
    assert [m.tmdb_id for _value, m in picks] == [1000, 1001, 1002]
