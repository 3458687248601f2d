"""The recommender's training arithmetic against plain numpy: the Gram matrix by blocks, and EASE^R."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from nexus_pyramid import recommender_model


def skewed(users: int = 300, items: int = 120, count: int = 4000, seed: int = 3) -> sparse.csr_matrix:
    """A users x items matrix with a few popular items (so the blocks of rows differ in weight)."""
    rng = np.random.default_rng(seed)
    user = rng.integers(0, users, count)
    item = np.floor(items * rng.random(count) ** 2.5).astype(np.int64)
    weight = rng.choice(np.array([1.0, 0.6, 0.3], dtype=np.float32), count)
    X = sparse.csr_matrix((weight, (user, item)), shape=(users, items), dtype=np.float32)
    X.sum_duplicates()
    return X


@pytest.mark.parametrize("blocks, threads", [(1, 1), (3, 2), (16, 2), (16, 4), (500, 2)])
def test_the_gram_matrix_by_blocks_is_the_whole_product(blocks, threads):
    X = skewed()
    gram = recommender_model.gram_matrix(X, blocks=blocks, threads=threads)
    assert gram.dtype == np.float32 and gram.shape == (120, 120)
    expected = (X.T @ X).toarray()
    np.testing.assert_allclose(gram, expected, rtol=1e-6)
    assert np.array_equal(gram, gram.T)


@pytest.mark.parametrize("block", [7, 40, 512])  # several blocks with a shorter last one; one; one larger
def test_ease_keeps_each_items_strongest_positive_weights_of_the_closed_form(block, monkeypatch):
    monkeypatch.setattr(recommender_model, "NEIGHBOUR_BLOCK", block)
    X = skewed(items=40)
    l2, keep = 5.0, 25  # more than some items have positive weights: the rows differ in length
    indptr, indices, data = recommender_model.ease_neighbours(X, l2=l2, keep=keep)
    dense = X.toarray().astype(np.float64)
    P = np.linalg.inv(dense.T @ dense + l2 * np.eye(40))
    B = -P / np.diag(P)[None, :]
    np.fill_diagonal(B, 0.0)
    assert len(indptr) == 41
    for item in range(40):
        got = indices[indptr[item]:indptr[item + 1]]
        weights = data[indptr[item]:indptr[item + 1]]
        strongest = [j for j in np.argsort(-B[item], kind="stable")[:keep] if B[item, j] > 0]
        assert sorted(got.tolist()) == sorted(strongest)
        np.testing.assert_allclose(weights, B[item, got], rtol=1e-3, atol=1e-6)
        assert list(weights) == sorted(weights, reverse=True)
    assert len(set(np.diff(indptr).tolist())) > 3  # rows of many lengths
