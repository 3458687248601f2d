"""/api/admin/jobs and /api/admin/recommendations/evaluation (admin; moderators may read)."""
from __future__ import annotations

import colander

from ..authz import ADMIN_READ, ADMIN_WRITE
from ..interfaces import IJobService
from ..models import JOB_KINDS
from ..presenters import jobs as present, paging
from ..services.online_eval import OnlineEvaluation
from . import schemas
from .envelope import success
from .service import ApiService

jobs = ApiService(name="admin_jobs", path="/api/admin/jobs", description="Background jobs")
job_detail = ApiService(name="admin_job", path="/api/admin/jobs/{job_id}", description="One background job")
evaluation = ApiService(name="admin_recommendations_evaluation", path="/api/admin/recommendations/evaluation",
                        description="Online evaluation of the served recommendations, per model version")


class JobsQuery(schemas.LocalPaging):
    kind = colander.SchemaNode(schemas.QueryString(), missing=colander.drop, validator=colander.OneOf(JOB_KINDS))


class JobStartBody(colander.MappingSchema):
    examples = [{"kind": "train_recommender"}]
    kind = colander.SchemaNode(schemas.StrictString(), validator=colander.Length(1, 32),
                               json_schema={"enum": ["train_recommender"]})


class JobPath(colander.MappingSchema):
    job_id = schemas.uuid_node()


@jobs.get(schema=schemas.request_schema(querystring=JobsQuery), returns=present.JobPage, permission=ADMIN_READ,
          error_codes=(401, 403))
def list_jobs(request):
    query = request.validated["querystring"]
    page = request.find_service(IJobService).list(query.get("kind"), query["page"], query["per_page"])
    return success(paging.of(page, present.job))


@jobs.post(schema=schemas.request_schema(JobStartBody), returns=present.Job, permission=ADMIN_WRITE,
           response_status=202, error_codes=(401, 403))
def start_job(request):
    job = request.find_service(IJobService).start(request.validated["body"]["kind"])
    request.response.status_int = 202
    return success(present.job(job), "Job queued")


@job_detail.get(schema=schemas.path_request_schema(JobPath), returns=present.Job, permission=ADMIN_READ,
                error_codes=(401, 403, 404))
def get_job(request):
    return success(present.job(request.find_service(IJobService).get(request.validated["path"]["job_id"])))


@evaluation.get(returns=present.OnlineEvaluationReport, permission=ADMIN_READ, error_codes=(401, 403))
def get_evaluation(request):
    settings = request.registry.settings
    report = OnlineEvaluation(request.dbsession, window=settings["online_eval.window"]).report()
    return success({"window_seconds": settings["online_eval.window"], "models": report})
