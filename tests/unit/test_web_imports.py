"""What a web process loads: the training stack (scipy, about 23 MB resident), numpy and the other
database's SQLAlchemy dialect stay out of it.

Workers share the master's pages copy-on-write, but every module imported is memory each
deployment pays for, and more than once: a worker serving requests copies about 40% of the
pages it inherited (nexus_pyramid/memory.py). scipy is needed only where a model is trained
(the job worker); numpy only where a trained model serves, and then the master imports it
before the fork, so that the workers share it."""
import subprocess
import sys

import numpy as np
import pytest
from sqlalchemy import create_engine, delete
from sqlalchemy.orm import Session

from nexus_pyramid import recommender_model
from nexus_pyramid.models import RecommenderModel
from tests.conftest import forget_movie_id_space

PROBE = """
import sys
from nexus_pyramid import make_app
from nexus_pyramid.interfaces import IRecommenderModels, find_service
from tests.conftest import make_settings
app = make_app(make_settings(sys.argv[1]), environ={})
model = find_service(app.registry, IRecommenderModels)._model
print(sorted(m for m in sys.argv[2:] if m in sys.modules), model and model.version)
"""
TRAINING = ("scipy", "rq", "implicit", "numpy")


def build_web_app(database_url: str, modules=TRAINING) -> str:
    """The modules of ``modules`` the built app has loaded, and the version of the model it holds."""
    ran = subprocess.run([sys.executable, "-c", PROBE, database_url, *modules], capture_output=True, text=True,
                         timeout=120)
    assert ran.returncode == 0, ran.stderr[-2000:]
    return ran.stdout.strip().splitlines()[-1]


def test_building_the_web_app_loads_no_training_library_nor_numpy():
    assert build_web_app("sqlite://") == "[] None"


@pytest.fixture
def unlabelled_database(database_url):
    """The suite's database, without models; the subprocess's app labels its movie id space
    (catalog): the label is removed again, for the suite's apps of the other source."""
    engine = create_engine(database_url)
    forget_movie_id_space(database_url)
    with engine.begin() as conn:
        conn.execute(delete(RecommenderModel))
    yield engine
    with engine.begin() as conn:
        conn.execute(delete(RecommenderModel))
    forget_movie_id_space(database_url)
    engine.dispose()


def test_with_a_trained_model_stored_the_master_imports_numpy_before_the_fork(database_url, unlabelled_database):
    with Session(unlabelled_database) as session, session.begin():
        version = recommender_model.store(
            session, np.array([11, 12, 13]), np.array([0, 1, 2, 2]), np.array([1, 0], dtype=np.int32),
            np.array([0.5, 0.5], dtype=np.float32), {}, {"l2": 1.0})
    assert version
    # numpy, shared by the workers; the model is each worker's, loaded at its first recommendation.
    assert build_web_app(database_url) == "['numpy'] None"


def test_an_empty_database_loads_no_model_and_no_numpy(database_url, unlabelled_database):
    assert build_web_app(database_url) == "[] None"


def test_only_the_database_s_own_dialect_is_loaded(database_url, unlabelled_database):
    """The upserts name no dialect module at import (models.meta.dialect_insert): a PostgreSQL
    process does not load SQLite's, and a SQLite one has it from its engine."""
    dialects = ("sqlalchemy.dialects.postgresql", "sqlalchemy.dialects.sqlite")
    loaded = build_web_app(database_url, dialects)
    if database_url.startswith("postgresql"):
        assert loaded == "['sqlalchemy.dialects.postgresql'] None"
    else:
        # SQLAlchemy imports its PostgreSQL dialect with the package's other modules in any case.
        assert loaded == "['sqlalchemy.dialects.postgresql', 'sqlalchemy.dialects.sqlite'] None"
