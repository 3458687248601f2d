"""A user's imports and the export of their data."""
from __future__ import annotations

import colander

from ..models import JOB_STATES
from .library import Interaction, Preferences
from .schema import enum, integer, list_of, moment, number, string
from .users import User


class ImportQueued(colander.MappingSchema):
    ref = "ImportQueued"
    id = string(format="uuid")
    state = enum(JOB_STATES)


class UnmatchedRow(colander.MappingSchema):
    ref = "UnmatchedRow"
    line = integer(description="Line number in the file (the header is line 1)")
    title = string()
    year = integer(nullable=True)


class Import(colander.MappingSchema):
    ref = "Import"
    id = string(format="uuid")
    state = enum(JOB_STATES)
    progress = number(description="0..1")
    format = enum(("letterboxd", "imdb"))
    rows = integer(description="Data rows in the file")
    matched = integer(description="Rows matched to a movie by title and year (not a blocked one)")
    imported = integer(description="Interactions added (rows already there are not added again)")
    unmatched = list_of(UnmatchedRow(name="row"),
                        description="The first 100 rows no movie matched (a blocked title matches none)")
    error = string(nullable=True)
    created_at = moment()
    finished_at = moment(nullable=True)


class Export(colander.MappingSchema):
    ref = "Export"
    exported_at = moment()
    user = User()
    preferences = Preferences()
    interactions = list_of(Interaction(name="interaction"), description="Every interaction, newest first")


def queued(job) -> dict:
    return {"id": str(job.id), "state": job.state}


def import_job(job) -> dict:
    result = job.result or {}
    return {"id": str(job.id), "state": job.state, "progress": float(job.progress or 0.0),
            "format": (job.params or {}).get("format", "letterboxd"),
            "rows": result.get("rows", (job.params or {}).get("rows", 0)),
            "matched": result.get("matched", 0), "imported": result.get("imported", 0),
            "unmatched": result.get("unmatched", []), "error": job.error, "created_at": job.created_at,
            "finished_at": job.finished_at}
