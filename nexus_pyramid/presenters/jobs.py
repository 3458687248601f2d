"""Background jobs, the serving model, and the online evaluation report."""
from __future__ import annotations

import colander

from ..models import JOB_KINDS, JOB_STATES
from .schema import enum, integer, list_of, moment, number, page_of, string


def free_object(**kw):
    """A JSON object whose keys depend on the job's kind."""
    return colander.SchemaNode(colander.Mapping(unknown="preserve"), nullable=True,
                               json_schema={"additionalProperties": True}, **kw)


class Job(colander.MappingSchema):
    ref = "Job"
    id = string(format="uuid")
    kind = enum(JOB_KINDS)
    state = enum(JOB_STATES)
    progress = number(description="0..1")
    created_at = moment()
    started_at = moment(nullable=True)
    finished_at = moment(nullable=True)
    duration = number(nullable=True, description="Seconds from start to end")
    result = free_object(description="What the job produced (a training: model_version, users, items, ...)")
    error = string(nullable=True)


JobPage = page_of(Job, "JobPage")


class ModelMeta(colander.MappingSchema):
    ref = "ModelMeta"
    version = integer(nullable=True, description="null: no trained model yet (co-occurrence fallback)")
    trained_at = moment(nullable=True)


class RecommendationMeta(colander.MappingSchema):
    """``meta`` of the user's recommendations: the model that ranked them, the page's language."""
    ref = "RecommendationMeta"
    model = ModelMeta()
    language = string(description="The language of titles and overviews (BCP 47)")
    notes = list_of(string(name="note"), missing=colander.drop,
                    description="Movies that could not be had in that language, or a source that has one only")


class ModelEvaluation(colander.MappingSchema):
    ref = "ModelEvaluation"
    model_version = integer(nullable=True, description="null: ranked without a trained model")
    trained_at = moment(nullable=True)
    users = integer(description="Users served recommendations")
    picks = integer(description="Recommendations recorded (first 10 of sampled page-1 views)")
    hits = integer(description="Recorded picks the user liked or watched within the window")
    hit_rate_at_10 = number(description="Users with at least one hit / users served")
    pick_hit_rate = number(description="hits / picks")
    coverage = number(description="Distinct movies served / movies in the catalog")
    distinct_movies = integer()


class OnlineEvaluationReport(colander.MappingSchema):
    ref = "OnlineEvaluationReport"
    window_seconds = integer()
    models = list_of(ModelEvaluation(name="model"))


def job(item) -> dict:
    return {"id": str(item.id), "kind": item.kind, "state": item.state, "progress": float(item.progress or 0.0),
            "created_at": item.created_at, "started_at": item.started_at, "finished_at": item.finished_at,
            "duration": item.duration, "result": item.result, "error": item.error}
