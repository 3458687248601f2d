"""The learned part of the recommender: EASE^R item-item weights, trained by a job, served from memory.

Training (``train``) reads every positive interaction (liked, watched, bookmarked; weighted
by type), builds the user x item matrix X, and solves EASE^R in closed form
(Steck, "Embarrassingly Shallow Autoencoders", 2019): with G = X'X + lambda I and P = G^-1,
B = -P / diag(P) with a zero diagonal. Each item keeps its ``keep`` strongest positive
neighbours: the artifact is a sparse item x item matrix (tmdb ids, CSR arrays) of a few
megabytes, stored versioned in ``recommender_models``.

Serving is a fold-in of the user's row at request time: score = x_u B, where x_u is built
from the user's current interactions (newest first, decayed by recency, weighted by type;
``not_interested`` counts against its neighbours). A new like changes the next page at
once, without retraining. The web request only scores: ``ModelHolder`` keeps the newest
version in memory, looks for a newer one at most every ``recommender.model_check_interval``
seconds, loads it aside and swaps one reference (requests in flight keep the one they
took); a model that cannot be loaded leaves the previous one serving.
"""
from __future__ import annotations

import io
import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select, text

from .models import Movie, RecommenderModel, UserMovieInteraction
from .models.meta import take_turns

if TYPE_CHECKING:
    import numpy as np
    from scipy import sparse

log = logging.getLogger(__name__)

ALGORITHM = "ease"
# Training weights of the interaction types (the signal "more like this").
TRAIN_WEIGHTS = {"liked": 1.0, "watched": 0.6, "bookmarked": 0.3}
DEFAULT_L2 = 100.0
DEFAULT_KEEP = 300
MODELS_KEPT = 3
# Training by blocks: X'X in GRAM_BLOCKS blocks of rows; the weights NEIGHBOUR_BLOCK rows of B at once
# (512 x items float32: 20 MB at 10,000 items, a few copies of it per block in flight).
GRAM_BLOCKS = 16
NEIGHBOUR_BLOCK = 512


@dataclass
class Model:
    version: int
    trained_at: datetime
    item_ids: np.ndarray  # tmdb ids, sorted
    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray

    @property
    def meta(self) -> dict:
        return {"version": self.version, "trained_at": self.trained_at}

    def row(self, tmdb_id: int) -> int | None:
        """The movie's row in the model, or None if the model does not know it."""
        row = int(self.rows([tmdb_id])[0])
        return row if row >= 0 else None

    def rows(self, tmdb_ids) -> np.ndarray:
        """Each movie's row in the model, -1 for a movie the model does not know."""
        import numpy as np
        ids = np.asarray(tmdb_ids, dtype=np.int64)
        rows = np.searchsorted(self.item_ids, ids)
        known = rows < len(self.item_ids)
        known[known] = self.item_ids[rows[known]] == ids[known]
        return np.where(known, rows, -1)

    def neighbours(self, tmdb_id: int) -> list[tuple[int, float]]:
        """The item's strongest neighbours, best first: [(tmdb id, weight)]."""
        row = self.row(tmdb_id)
        if row is None:
            return []
        start, end = self.indptr[row], self.indptr[row + 1]
        others = self.item_ids[self.indices[start:end]]
        return list(zip(others.tolist(), self.data[start:end].tolist()))


def to_bytes(item_ids, indptr, indices, data, params: dict) -> bytes:
    import numpy as np
    buffer = io.BytesIO()
    np.savez(buffer, item_ids=item_ids.astype(np.int64), indptr=indptr.astype(np.int64),
             indices=indices.astype(np.int32), data=data.astype(np.float32),
             params=np.frombuffer(json.dumps(params).encode(), dtype=np.uint8))
    return buffer.getvalue()


def from_bytes(blob: bytes, version: int, trained_at: datetime) -> Model:
    import numpy as np
    with np.load(io.BytesIO(blob), allow_pickle=False) as arrays:
        model = Model(version, trained_at, arrays["item_ids"], arrays["indptr"], arrays["indices"], arrays["data"])
    if len(model.indptr) != len(model.item_ids) + 1 or (len(model.item_ids) and model.indptr[-1] != len(model.indices)):
        raise ValueError("inconsistent model artifact")
    return model


# -- training ---------------------------------------------------------------------------------
def ease_neighbours(X: sparse.csr_matrix, l2: float = DEFAULT_L2, keep: int = DEFAULT_KEEP, progress=None):
    """EASE^R on X (users x items, float32): (indptr, indices, data) of each item's top ``keep`` weights.

    Memory: one dense items x items float32 matrix (400 MB at 10,000 items), built by blocks
    (``gram_matrix``), factorized and inverted in place (LAPACK potrf/potri), then read block
    by block.
    """
    import os
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    from scipy.linalg import lapack  # training only: web processes never load scipy
    progress = progress or (lambda fraction: None)
    n = X.shape[1]
    gram = gram_matrix(X)
    progress(0.3)
    gram[np.diag_indices(n)] += l2
    # LAPACK works in place only on a Fortran-ordered array; f2py copies a C-ordered one (400 MB
    # more at 10,000 items: the training's peak). The matrix is symmetric: its transpose is it.
    factor, info = lapack.spotrf(gram.T, lower=1, overwrite_a=1, clean=0)
    if info != 0:
        raise ArithmeticError(f"the Gram matrix is not positive definite (potrf info {info})")
    del gram
    progress(0.55)
    inverse, info = lapack.spotri(factor, lower=1, overwrite_c=1)
    if info != 0:
        raise ArithmeticError(f"inversion failed (potri info {info})")
    del factor
    progress(0.8)
    # Only the lower triangle is set: P[i, j] = P[max, min]. B[i, j] = -P[i, j] / P[j, j].
    diag = np.diag(inverse).copy()
    keep = max(1, min(keep, n - 1)) if n > 1 else 0

    def strongest(start: int):
        """(kept per row, their columns, their weights) for the rows start .. start + BLOCK."""
        end = min(n, start + NEIGHBOUR_BLOCK)
        rows = np.empty((end - start, n), dtype=np.float32)
        rows[:, :end] = np.tril(inverse[start:end, :end], k=start)
        rows[:, start:end] += np.triu(inverse[start:end, start:end].T, k=1)
        rows[:, end:] = inverse[end:, start:end].T
        rows = -rows / diag[None, :]
        rows[np.arange(end - start), np.arange(start, end)] = 0.0
        if not keep:
            return np.zeros(end - start, dtype=np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
        top = np.argpartition(-rows, keep - 1, axis=1)[:, :keep] if keep < n else np.argsort(-rows, axis=1)
        values = np.take_along_axis(rows, top, axis=1)
        order = np.argsort(-values, axis=1, kind="stable")
        top, values = np.take_along_axis(top, order, axis=1), np.take_along_axis(values, order, axis=1)
        positive = values > 0  # row by row, strongest first
        return positive.sum(axis=1), top[positive], values[positive]

    counts, all_indices, all_data = [], [], []
    # numpy releases the GIL in these array operations, so blocks run side by side; two at most,
    # as each holds a few copies of its rows (some 100 MB at 10,000 items) beside P.
    with ThreadPoolExecutor(min(2, os.cpu_count() or 1)) as pool:
        for done, (kept, columns, weights) in enumerate(pool.map(strongest, range(0, n, NEIGHBOUR_BLOCK)), 1):
            counts.append(kept)
            all_indices.append(columns)
            all_data.append(weights)
            progress(0.8 + 0.2 * min(n, done * NEIGHBOUR_BLOCK) / n)
    indptr = np.zeros(n + 1, dtype=np.int64)
    if counts:
        np.cumsum(np.concatenate(counts), out=indptr[1:])
    indices = np.concatenate(all_indices) if all_indices else np.zeros(0, dtype=np.int32)
    data = np.concatenate(all_data) if all_data else np.zeros(0, dtype=np.float32)
    return indptr, indices.astype(np.int32), data.astype(np.float32)


def gram_matrix(X: sparse.csr_matrix, blocks: int = GRAM_BLOCKS, threads: int | None = None) -> np.ndarray:
    """X'X as a dense float32 items x items matrix, computed by blocks of rows in threads.

    The whole sparse product at once costs about as much memory as the dense result (at
    10,000 items and 1M interactions, 43M non-zeros: 340 MB beside the 400 MB matrix) and runs
    on one core. By blocks of rows, each block's product is small, is written into its rows of
    the dense matrix and freed; scipy releases the GIL while it multiplies, so the blocks run
    on every core (10,000 items, 1M interactions, 2 cores: 2.7 s as one product, 0.7 s by
    blocks; the process peaked at 552 MiB instead of 824). The result is the same.
    """
    import os
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    n = X.shape[1]
    XT = X.T.tocsr()
    gram = np.empty((n, n), dtype=np.float32)
    edges = np.linspace(0, n, min(blocks, max(n, 1)) + 1).astype(np.int64)

    def block(bounds):
        start, end = bounds
        if end > start:
            (XT[start:end] @ X).astype(np.float32, copy=False).toarray(out=gram[start:end])

    with ThreadPoolExecutor(threads or min(4, os.cpu_count() or 1)) as pool:
        list(pool.map(block, zip(edges[:-1], edges[1:])))
    return gram


def interaction_matrix(rows, type_weights=TRAIN_WEIGHTS):
    """(X, item tmdb ids) from rows of (user key, tmdb id, interaction type); the strongest type per pair."""
    import numpy as np
    from scipy import sparse
    user_index: dict = {}
    users, items, weights = [], [], []
    for user, tmdb_id, kind in rows:
        weight = type_weights.get(kind)
        if weight:
            users.append(user_index.setdefault(user, len(user_index)))
            items.append(tmdb_id)
            weights.append(weight)
    item_ids, item_col = np.unique(np.asarray(items, dtype=np.int64), return_inverse=True)
    coo = sparse.coo_matrix((np.asarray(weights, dtype=np.float32), (np.asarray(users, dtype=np.int64), item_col)),
                            shape=(len(user_index), len(item_ids)))
    return _max_duplicates(coo), item_ids


def _max_duplicates(coo: sparse.coo_matrix) -> sparse.csr_matrix:
    import numpy as np
    from scipy import sparse
    order = np.lexsort((-coo.data, coo.col, coo.row))
    row, col, data = coo.row[order], coo.col[order], coo.data[order]
    first = np.ones(len(row), dtype=bool)
    first[1:] = (row[1:] != row[:-1]) | (col[1:] != col[:-1])
    return sparse.csr_matrix((data[first], (row[first], col[first])), shape=coo.shape)


def fit(rows, l2: float = DEFAULT_L2, keep: int = DEFAULT_KEEP, max_items: int = 20000, progress=None):
    """Rows of (user key, tmdb id, type) -> (item ids, indptr, indices, data, stats)."""
    X, item_ids = interaction_matrix(rows)
    return fit_matrix(X, item_ids, l2, keep, max_items, progress)


def fit_matrix(X, item_ids, l2: float = DEFAULT_L2, keep: int = DEFAULT_KEEP, max_items: int = 20000,
               progress=None):
    """``fit`` from the interaction matrix (``interaction_matrix``'s result)."""
    import numpy as np
    progress = progress or (lambda fraction: None)
    if X.shape[1] > max_items:  # the most interacted items only: memory grows with items squared
        counts = np.asarray((X > 0).sum(axis=0)).ravel()
        chosen = np.sort(np.argsort(-counts, kind="stable")[:max_items])
        X, item_ids = X[:, chosen].tocsr(), item_ids[chosen]
    progress(0.1)
    if X.shape[1] < 2:
        indptr, indices, data = np.zeros(X.shape[1] + 1, dtype=np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32)
    else:
        indptr, indices, data = ease_neighbours(X, l2, keep, lambda f: progress(0.1 + 0.85 * f))
    stats = {"users": int(X.shape[0]), "items": int(X.shape[1]), "interactions": int(X.nnz),
             "neighbours": int(len(indices))}
    return item_ids, indptr, indices, data, stats


# One row per user with their movies and types as two arrays: a few thousand rows instead of
# a million (PostgreSQL builds the arrays; psycopg2 parses them in C).
TRAINING_ARRAYS_SQL = """
SELECT array_agg(m.tmdb_id) AS movies,
       array_agg(CASE i.interaction_type WHEN 'liked' THEN 0 WHEN 'watched' THEN 1 ELSE 2 END) AS kinds
FROM user_movie_interactions i JOIN movies m ON m.id = i.movie_id
WHERE i.interaction_type IN ('liked', 'watched', 'bookmarked')
GROUP BY i.user_id
"""
_KIND_CODES = ("liked", "watched", "bookmarked")
# Memory PostgreSQL may give the read's hash aggregate, for its transaction only. At 1M
# interactions it needs some 50 MB. Under the default 4 MB the planner walks the interactions
# in user order through an index instead (a million heap fetches): on 1M interactions (the data
# of bench/recs_latency.py) that read took 3.8 s, the hash plan 1.6 to 2.2 s (EXPLAIN ANALYZE,
# 2026-12-03). Larger data falls back to the planner's other plans, not to more memory.
TRAINING_READ_WORK_MEM = "128MB"


def read_training_matrix(dbsession, type_weights=TRAIN_WEIGHTS):
    """(X, item tmdb ids) of every positive interaction, read the fastest way the database allows.

    PostgreSQL: one row per user with array columns (several times faster than fetching a
    million rows), fetched as one result: a server-side cursor would forbid PostgreSQL's
    parallel workers and run the aggregation alone (bench/training.py --job, 1M interactions:
    the job's read took 6.9 s through one, 2.5 s without; the result is some 15 MB of text).
    Elsewhere the rows are streamed through ``read_training_rows``.
    """
    import numpy as np
    from scipy import sparse
    if dbsession.get_bind().dialect.name != "postgresql":
        return interaction_matrix(read_training_rows(dbsession), type_weights)
    codes = np.array([type_weights.get(kind, 0.0) for kind in _KIND_CODES], dtype=np.float32)
    users, items, weights = [], [], []
    # SET LOCAL begins the transaction (dependencies.postgres.ReadsWithoutTransaction), which ends
    # with the caller's: the pooled connection goes back with the server's default.
    dbsession.execute(text(f"SET LOCAL work_mem = '{TRAINING_READ_WORK_MEM}'"))
    result = dbsession.execute(text(TRAINING_ARRAYS_SQL))
    for index, (movies, kinds) in enumerate(result):
        users.append(np.full(len(movies), index, dtype=np.int64))
        items.append(np.asarray(movies, dtype=np.int64))
        weights.append(codes[np.asarray(kinds, dtype=np.int64)])
    if not users:
        return interaction_matrix([], type_weights)
    users, items, weights = np.concatenate(users), np.concatenate(items), np.concatenate(weights)
    keep = weights > 0
    users, items, weights = users[keep], items[keep], weights[keep]
    item_ids, item_col = np.unique(items, return_inverse=True)
    coo = sparse.coo_matrix((weights, (users, item_col)), shape=(int(users.max()) + 1 if len(users) else 0,
                                                                 len(item_ids)))
    return _max_duplicates(coo), item_ids


def read_training_rows(dbsession, chunk: int = 50_000):
    """Every positive interaction as (user id, tmdb id, type), streamed."""
    query = (select(UserMovieInteraction.user_id, Movie.tmdb_id, UserMovieInteraction.interaction_type)
             .join(Movie, Movie.id == UserMovieInteraction.movie_id)
             .where(UserMovieInteraction.interaction_type.in_(list(TRAIN_WEIGHTS))))
    for row in dbsession.execute(query.execution_options(yield_per=chunk)):
        yield row[0], row[1], row[2]


def store(dbsession, item_ids, indptr, indices, data, stats: dict, params: dict, job_id=None) -> int:
    """Save a trained model as the next version (in the caller's transaction); keep the last few."""
    # Two trainings ending at once would both take the same next version: the second would fail
    # on the key after all its work. Stores take turns until the transaction ends.
    take_turns(dbsession, "recommender_models")
    version = (dbsession.execute(select(func.max(RecommenderModel.version))).scalar() or 0) + 1
    dbsession.add(RecommenderModel(version=version, job_id=job_id, algorithm=ALGORITHM, params=params,
                                   stats=stats, artifact=to_bytes(item_ids, indptr, indices, data, params)))
    dbsession.flush()
    dbsession.execute(delete(RecommenderModel).where(RecommenderModel.version <= version - MODELS_KEPT))
    return version


# -- serving ----------------------------------------------------------------------------------
class ModelHolder:
    """The process's current model: checked against the database at most every ``check_interval`` s."""

    def __init__(self, check_interval: float = 5.0, clock=time.monotonic):
        self.check_interval = check_interval
        self.clock = clock
        self._model: Model | None = None
        self._checked_at = None
        self._lock = threading.Lock()
        self._failed_versions: set[int] = set()

    def current(self, dbsession) -> Model | None:
        now = self.clock()
        if self._checked_at is not None and now - self._checked_at < self.check_interval:
            return self._model
        if not self._lock.acquire(blocking=False):
            return self._model  # another thread is checking: serve what we have
        try:
            self._checked_at = now
            latest = dbsession.execute(
                select(RecommenderModel.version, RecommenderModel.trained_at)
                .order_by(RecommenderModel.version.desc()).limit(1)).first()
            if latest is None:
                self._model = None  # every model was deleted: the fallback ranking serves
            elif (self._model is None or self._model.version != latest.version) \
                    and latest.version not in self._failed_versions:
                blob = dbsession.execute(select(RecommenderModel.artifact)
                                         .where(RecommenderModel.version == latest.version)).scalar_one_or_none()
                try:
                    loaded = from_bytes(blob, latest.version, latest.trained_at)
                except Exception:  # noqa: BLE001 (a bad artifact must not take serving down)
                    log.exception("model version %s cannot be loaded; version %s keeps serving",
                                  latest.version, self._model.version if self._model else None)
                    self._failed_versions.add(latest.version)
                else:
                    self._model = loaded  # one reference swap: requests in flight keep theirs
            return self._model
        finally:
            self._lock.release()

    def forget(self) -> None:
        """Look again at the next call (after this process trained a model)."""
        self._checked_at = None
