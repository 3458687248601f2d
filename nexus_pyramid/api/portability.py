"""/api/user/imports (Letterboxd / IMDb CSV, a background job) and /api/user/export (token required)."""
from __future__ import annotations

import json

import colander
from sqlalchemy import select

from ..authz import SELF
from ..errors import NotFound, ValidationError
from ..interfaces import IJobService, ILibraryService, IMovieService
from ..jobs.imports import FORMATS, parse
from ..models import UserMovieInteraction
from ..models.meta import utcnow
from ..presenters import library, portability as present, users
from ..request_limits import too_large
from . import schemas
from .envelope import success
from .service import ApiService

imports = ApiService(name="user_imports", path="/api/user/imports",
                     description="Import ratings, diary or watchlist from Letterboxd or IMDb")
import_detail = ApiService(name="user_import", path="/api/user/imports/{import_id}", description="One import")
export = ApiService(name="user_export", path="/api/user/export", description="All of the user's data as JSON")

MULTIPART = "multipart/form-data"
UPLOAD_BODY = {
    "required": True,
    "content": {MULTIPART: {"schema": {
        "type": "object", "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary",
                                "description": "The CSV export (at most imports.max_size, 5 MiB by default)"},
                       "format": {"type": "string", "enum": list(FORMATS), "default": "auto"}}}}},
}


class ImportPath(colander.MappingSchema):
    import_id = schemas.uuid_node()


def import_limit(registry) -> int:
    return registry.settings["imports.max_size"]


@imports.post(content_type=MULTIPART, request_body=UPLOAD_BODY, returns=present.ImportQueued, permission=SELF,
              response_status=202, error_codes=(401, 413))
def start_import(request):
    limit = import_limit(request.registry)
    upload = request.POST.get("file")
    if upload is None:
        raise ValidationError.field("file", "Attach the CSV export as the form field 'file'.")
    if not hasattr(upload, "file"):  # a text field (a part without a filename), not a file
        raise ValidationError.field(
            "file", "Must be a file upload: a form part with a filename, not a text field.",
            "Attach the CSV export as a file in the form field 'file'.")
    # A file part here is a cgi.FieldStorage, whose truth value raises: test its type, never its truth.
    declared = request.POST.get("format", "")
    if not isinstance(declared, str):
        raise ValidationError.field(
            "format", f"Must be a text field (one of: {', '.join(FORMATS)}), not a file.",
            "The form field 'format' must be text, not a file.")
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise too_large(limit)
    parsed = parse(data, declared or "auto", upload.filename or "")
    payload = json.dumps({"rows": parsed["rows"]}).encode()
    job = request.find_service(IJobService).start(
        "import", {"format": parsed["format"], "variant": parsed["variant"], "rows": len(parsed["rows"])},
        user_id=request.identity.caller.id, payload=payload, admin=False)
    request.response.status_int = 202
    return success(present.queued(job), "Import queued")


@import_detail.get(schema=schemas.path_request_schema(ImportPath), returns=present.Import, permission=SELF,
                   error_codes=(401, 404))
def get_import(request):
    job = request.find_service(IJobService).get(request.validated["path"]["import_id"],
                                                user_id=request.identity.caller.id)
    if job.kind != "import":
        raise NotFound("No such import.")
    return success(present.import_job(job))


@export.get(returns=present.Export, permission=SELF, error_codes=(401,))
def get_export(request):
    user = request.identity.caller
    movies = request.find_service(IMovieService).presenter
    rows = request.dbsession.execute(
        select(UserMovieInteraction).where(UserMovieInteraction.user_id == user.id)
        .order_by(UserMovieInteraction.created_at.desc(), UserMovieInteraction.id.desc())).scalars().all()
    return success({
        "exported_at": utcnow(),
        "user": users.user(user),
        "preferences": library.preferences(request.find_service(ILibraryService).preferences(user), movies),
        "interactions": [library.interaction(item, movies) for item in rows],
    }, "Your data")
