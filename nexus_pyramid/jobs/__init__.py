"""Background jobs (training the recommender's model, imports) and the model every web process serves.

Registers ``IJobQueue`` (jobs.queue.JobQueue), ``IRecommenderModels``
(recommender_model.ModelHolder) and ``IJobService`` (per request: jobs.service.JobService).
The worker is ``nexus-worker`` (scripts/worker.py); ``nexus-jobs`` starts and lists jobs.
"""
from __future__ import annotations

from ..interfaces import IJobQueue, IJobService, IRecommenderModels, provide
from ..recommender_model import ModelHolder
from .queue import JobQueue
from .service import JobService


def job_service(context, request):
    return JobService(request.dbsession, request.find_service(IJobQueue), request.tm)


def includeme(config):
    settings = config.get_settings()
    provide(config, JobQueue(config.registry, settings["jobs.mode"], settings["jobs.queue_name"],
                             settings["jobs.timeout"]), IJobQueue)
    provide(config, ModelHolder(settings["recommender.model_check_interval"]), IRecommenderModels)
    config.register_service_factory(job_service, IJobService)
