"""What each kind of job does (``FUNCTIONS``: kind -> function of a ``JobContext``)."""
from __future__ import annotations

import time

from .. import recommender_model
from ..interfaces import IRecommenderModels, find_service
from ..services.online_eval import OnlineEvaluation
from .runner import JobFailed


def train_recommender(ctx) -> None:
    """Train the recommender on every interaction and store the next model version."""
    settings = ctx.registry.settings
    params = {"l2": float(ctx.params.get("l2", settings["recommender.l2"])),
              "keep": int(ctx.params.get("keep", settings["recommender.neighbours"])),
              "max_items": int(ctx.params.get("max_items", settings["recommender.max_items"]))}
    started = time.perf_counter()
    with ctx.transaction() as session:  # read into the sparse matrix; no transaction while computing
        X, item_ids = recommender_model.read_training_matrix(session)
    read = time.perf_counter() - started
    ctx.progress(0.1, force=True)
    try:
        item_ids, indptr, indices, data, stats = recommender_model.fit_matrix(
            X, item_ids, params["l2"], params["keep"], params["max_items"],
            progress=lambda f: ctx.progress(0.1 + 0.85 * f))
    except ArithmeticError as exc:  # the parameters do not fit the data: said to whoever started it
        raise JobFailed(f"Training failed: {exc}.") from exc
    del X
    fitted = time.perf_counter() - started - read
    with ctx.transaction() as session:
        version = recommender_model.store(session, item_ids, indptr, indices, data, stats,
                                          {**params, "weights": recommender_model.TRAIN_WEIGHTS}, job_id=ctx.job_id)
        # Each (periodic) training also keeps the online evaluation's table bounded.
        pruned = OnlineEvaluation(session, window=settings["online_eval.window"]).prune(
            settings["online_eval.retention"])
        ctx.finish(session, {"model_version": version, **stats, "read_seconds": round(read, 3),
                             "train_seconds": round(fitted, 3), "seconds": round(time.perf_counter() - started, 3),
                             "served_picks_pruned": pruned})
    holder = find_service(ctx.registry, IRecommenderModels, None)
    if holder is not None:
        holder.forget()  # this process serves the new version at its next request


def run_import(ctx) -> None:
    from .imports import run_import as run

    run(ctx)


FUNCTIONS = {"train_recommender": train_recommender, "import": run_import}
# Kinds an admin may start by name (imports are started by their user, with a file).
ADMIN_KINDS = ("train_recommender",)
# Kinds of which one at a time is queued or running: starting another returns that one.
SINGLETON_KINDS = ("train_recommender",)
