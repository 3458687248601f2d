"""The admin console: server-rendered pages over the same services as the JSON API.

Every page needs ``admin:read`` (admins and moderators); every form that changes
anything needs ``admin:write`` (admins) and a CSRF token.
"""
from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlencode

import json
import logging

import colander
from pyramid.httpexceptions import HTTPBadRequest, HTTPFound
from pyramid.security import forget, remember
from pyramid.view import exception_view_config, forbidden_view_config, notfound_view_config, view_config

from ..api.schemas import MAX_PAGE_LOCAL, MAX_TMDB_ID, QueryInt, Text
from ..authz import ADMIN_READ, ADMIN_WRITE, PUBLIC
from ..database_errors import database_error
from ..errors import (AccountSuspendedSignIn, AppError, Conflict, InvalidCredentials, NotFound, RateLimited,
                      ServiceUnavailable, UpstreamUnavailable, ValidationError)
from ..interfaces import (IBlockedMovies, IJobService, ILibraryService, IMovieService, IMovieSource, ITokenService,
                          IUserService)
from ..jobs.tasks import ADMIN_KINDS
from ..models import JOB_KINDS, ROLE_NAMES
from ..models.meta import utcnow
from ..movie_source.cache import TTL_KINDS
from ..movie_source.inspect import kind_of
from ..request_limits import UnsupportedMediaType
from ..presenters import blocked as present_blocked, jobs as present_jobs
from ..presenters import audit as present_audit, library as present_library, paging, users as present
from .. import metrics
from ..services import stats
from .charts import bar_chart
from ..services.users import CONSOLE_ROLES, deleted_user_label, normalize_email

log = logging.getLogger("nexus.errors")
PER_PAGE = 25


def _int_param(request, name: str, default: int, maximum: int = MAX_PAGE_LOCAL) -> int:
    """Clamped into 1..maximum (the API's page bound keeps OFFSET inside PostgreSQL's range), as
    a value that is not a number is the default: a console link never fails for its page. A
    number too long for ``int()`` (over 4,300 digits) is past the last page, as a shorter one is."""
    raw = request.params.get(name, default)
    try:
        value = int(raw)
    except (TypeError, ValueError):
        digits = raw.strip().lstrip("+") if isinstance(raw, str) else ""
        return maximum if digits.isdecimal() else default  # the digits int() reads, any script
    return max(1, min(value, maximum))


_FIELD = colander.SchemaNode(Text())
FORM_TYPE = "application/x-www-form-urlencoded"


def check_console_forms(view, info):
    """A view deriver: a console POST's form is checked before the CSRF check and the view read it.

    - Its body is ``application/x-www-form-urlencoded``, what every console form sends. A
      multipart body could carry any field as a file, which neither the CSRF check nor a view
      can read as text (that was a 500 page, on the sign-in form too): 415.
    - It is UTF-8, percent-decoded or not. WebOb reads other bytes as U+FFFD, which the
      views would have stored (a suspension reason, an audit entry): 400.
    - No field holds NUL, which PostgreSQL cannot store; the check is the API's (``Text``),
      made once for every form here rather than in each. The sign-in form keeps its own
      answers there, which never reach the database with a NUL: a wrong guess (401), an
      unsafe ``next`` (the dashboard).

    Placed under the permission check: a caller who may not post learns nothing here.
    """
    route = info.options.get("route_name") or ""
    if not route.startswith("console_"):
        return view
    nul_refused = route != "console_login"

    def checked(context, request):
        if request.method == "POST":
            check_form(request, nul_refused)
        return view(context, request)

    return checked


def check_form(request, nul_refused: bool = True) -> None:
    if request.content_type != FORM_TYPE:
        if request.content_length or request.content_type:
            raise UnsupportedMediaType(f"Console forms are sent as {FORM_TYPE}.",
                                       {"Content-Type": [f"Expected {FORM_TYPE}"]})
        return
    try:
        parse_qsl(request.body.decode("utf-8"), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise ValidationError("The form is not valid UTF-8.", {"body": ["Not valid UTF-8"]})
    if nul_refused:
        for name, value in request.POST.items():
            try:
                _FIELD.typ.deserialize(_FIELD, value)
            except colander.Invalid as exc:
                raise ValidationError.field(name, exc.msg, f"Invalid value for {name}. {exc.msg}.")


MAX_NOTICE = 300  # bytes of one notice in the cookie's JSON (non-ASCII is written as \uXXXX there)
MAX_NOTICES = 3  # notices of one kind waiting for the next page


def say(request, message: str, queue: str = "") -> None:
    """A notice for the next page. Notices wait in the signed session cookie, whose value may not
    pass 4 KB: a long one (a cache key, an email address) is cut, and only the newest few of each
    kind wait, so that no number of posts without a page between them overfills it (the cookie
    could not be written: a bare 500 after the change had been made)."""
    if len(json.dumps(message)) > MAX_NOTICE:
        message = message[:MAX_NOTICE]
        while len(json.dumps(message)) > MAX_NOTICE - 6:  # room for the ellipsis
            message = message[:len(message) * 3 // 4]
        message += "\u2026"
    waiting = request.session.pop_flash(queue)[-(MAX_NOTICES - 1):]
    for notice in (*waiting, message):
        request.session.flash(notice, queue)


class Redirect(HTTPFound):
    """A 302 whose Location is sent as the path given.

    WebOb turns a relative Location into an absolute URL built from the request's Host
    header, which a client controls; a relative reference is valid HTTP (RFC 9110) and
    always stays on the site the browser is already on.
    """

    def _abs_headerlist(self, environ):
        return list(self.headerlist)


MAX_NEXT_LENGTH = 2000


def _safe_next(value) -> str:
    """Only local console paths: never an open redirect, never a header injection.

    A path of printable ASCII under /admin (so a single leading "/", no scheme, no "//",
    no backslash, no CR/LF or other control characters); anything else is /admin.
    """
    if not isinstance(value, str) or not value or len(value) > MAX_NEXT_LENGTH:
        return "/admin"
    if any(not "!" <= ch <= "~" for ch in value) or "\\" in value:
        return "/admin"
    if not (value == "/admin" or value.startswith(("/admin/", "/admin?", "/admin#"))):
        return "/admin"
    # A "." or ".." segment (percent-encoded or not) is resolved by the browser: /admin/../x is /x.
    path = value.split("?", 1)[0].split("#", 1)[0]
    if any(unquote(segment) in (".", "..") for segment in path.split("/")) or "%2f" in path.lower():
        return "/admin"
    return value


# -- sign in and out ------------------------------------------------------------------
@view_config(route_name="console_login", request_method="GET", renderer="login.jinja2", permission=PUBLIC)
def login_form(request):
    if request.identity is not None and request.identity.via == "session":
        return Redirect("/admin")
    return {"email": "", "error": None, "next": _safe_next(request.params.get("next"))}


@view_config(route_name="console_login", request_method="POST", renderer="login.jinja2", permission=PUBLIC,
             require_csrf=True)
def login_submit(request):
    email = normalize_email(request.POST.get("email", ""))[:254]
    password = request.POST.get("password", "")[:1024]
    next_url = _safe_next(request.POST.get("next"))
    form = {"email": email, "next": next_url}
    try:
        # The same rule as the API's sign-in: the guess is counted before it is evaluated.
        user = request.find_service(IUserService).sign_in(email, password)
    except (RateLimited, ServiceUnavailable) as exc:
        request.response.status_int = exc.status
        request.response.headers.update(exc.headers)
        return {**form, "error": exc.message}
    except InvalidCredentials as exc:
        request.response.status_int = 401
        return {**form, "error": exc.message}
    except AccountSuspendedSignIn as exc:
        request.response.status_int = 403
        return {**form, "error": exc.message}
    if not set(CONSOLE_ROLES) & set(user.role_names):
        request.response.status_int = 403
        return {**form, "error": "This account cannot use the admin console."}
    headers = remember(request, str(user.id))
    say(request, f"Signed in as {user.email}.", "success")
    return Redirect(next_url, headers=headers)


@view_config(route_name="console_logout", request_method="POST", permission=ADMIN_READ, require_csrf=True)
def logout(request):
    headers = forget(request)
    say(request, "Signed out.", "success")
    return Redirect("/admin/login", headers=headers)


# -- pages ------------------------------------------------------------------------------
@view_config(route_name="console_home", renderer="dashboard.jinja2", permission=ADMIN_READ, request_method="GET")
def dashboard(request):
    figures = stats.dashboard(request.dbsession)
    series = stats.daily_series(request.dbsession, 30)
    charts = [
        {"id": "chart-signups", "title": "Sign-ups per day, last 30 days", "points": series["signups"]},
        {"id": "chart-active", "title": "Active users per day, last 30 days", "points": series["active"]},
        {"id": "chart-interactions", "title": "Interactions per day, last 30 days", "points": series["interactions"]},
    ]
    for chart in charts:
        chart["svg"] = bar_chart(chart["title"], chart["points"], chart["id"])
    return {**figures, "charts": charts, "deployment": metrics.snapshot(),
            "model": _model_age(request.find_service(IJobService).current_model()),
            "source": request.find_service(IMovieSource).state(), "page_title": "Dashboard"}


def _model_age(model: dict | None) -> dict | None:
    """The serving recommendation model with its age (None before the first training)."""
    if model is None:
        return None
    age = (utcnow() - model["trained_at"]).total_seconds()
    return {**model, "age": _duration(age)}


def _duration(seconds: float) -> str:
    """``3 d 4 h``, ``5 h 12 min``, ``7 min``, ``42 s``: how long ago, to the unit that matters."""
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min" if minutes else f"{secs} s"


@view_config(route_name="console_users", renderer="users.jinja2", permission=ADMIN_READ, request_method="GET")
def users(request):
    q = request.params.get("q", "").strip()[:200]
    page_number = _int_param(request, "page", 1)
    page = paging.of(request.find_service(IUserService).search(q or None, page_number, PER_PAGE), present.user)

    def page_url(number):
        return request.route_path("console_users", _query={"q": q, "page": number} if q else {"page": number})

    return {"page": page, "q": q, "page_url": page_url, "page_title": "Users"}


@view_config(route_name="console_user", renderer="user.jinja2", permission=ADMIN_READ, request_method="GET")
def user_detail(request):
    user = request.context.user
    movies = request.find_service(IMovieService).presenter
    library = request.find_service(ILibraryService)
    recent = library.interactions(user, None, 1, 10)
    return {
        "user": present.admin_user(user, request.find_service(IUserService).interaction_counts(user)),
        "preferences": present_library.preferences(library.preferences(user), movies),
        "recent": [present_library.interaction(item, movies) for item in recent.items],
        # The first page the API's GET /api/user/recommendations gives this user, as it gives it.
        **_recommendations_of(library, user),
        # The user's signed-in apps (refresh-token families), as GET /api/user/sessions lists them.
        "sessions": request.find_service(ITokenService).sessions(user.id),
        "roles": ROLE_NAMES,
        "page_title": user.name,
    }


def _recommendations_of(library, user) -> dict:
    try:
        return {"recommendations": library.recommendations(user)[0][:20], "recommendations_error": None}
    except (UpstreamUnavailable, ServiceUnavailable) as exc:  # the rest of the page still shows
        return {"recommendations": [], "recommendations_error": exc.message}


@view_config(route_name="console_user_roles", request_method="POST", permission=ADMIN_WRITE, require_csrf=True)
def change_role(request):
    user = request.context.user
    role, action = request.POST.get("role", ""), request.POST.get("action", "")
    if action not in ("assign", "revoke"):
        raise HTTPBadRequest("Unknown action.")
    users = request.find_service(IUserService)
    if action == "assign" and role == "admin" and role not in user.role_names and request.POST.get("confirm") != "yes":
        # Granting admin hands over everything, deletion included: asked twice, as deleting is.
        from pyramid.renderers import render_to_response

        return render_to_response("confirm_admin.jinja2", {
            "user": present.admin_user(user, users.interaction_counts(user)),
            "page_title": f"Make {user.name} an admin"}, request=request)
    change = users.assign_role if action == "assign" else users.revoke_role
    try:
        # The service decides, as for the API: a role it does not know is a 400 page.
        change(user, role, actor=request.identity.user, channel="console")
    except Conflict as exc:  # e.g. the last admin: shown to the administrator, nothing changed
        say(request, exc.message, "error")
        return Redirect(request.route_path("console_user", user_id=user.id))
    verb = "now has" if action == "assign" else "no longer has"
    say(request, f"{user.email} {verb} the role {role}.", "success")
    return Redirect(request.route_path("console_user", user_id=user.id))


@view_config(route_name="console_user_suspend", request_method="POST", permission=ADMIN_WRITE, require_csrf=True)
def suspend_user(request):
    user = request.context.user
    back = Redirect(request.route_path("console_user", user_id=user.id))
    try:
        request.find_service(IUserService).suspend(user, request.POST.get("reason", ""),
                                                   actor=request.identity.user, channel="console")
    except (Conflict, ValidationError) as exc:  # the last active admin; no reason given
        say(request, exc.message, "error")
        return back
    say(request, f"{user.email} is suspended: they cannot sign in and their sessions ended.", "success")
    if user.id == request.identity.caller.id:
        return Redirect("/admin/login", headers=forget(request))
    return back


@view_config(route_name="console_user_reinstate", request_method="POST", permission=ADMIN_WRITE,
             require_csrf=True)
def reinstate_user(request):
    user = request.context.user
    request.find_service(IUserService).reinstate(user, actor=request.identity.user, channel="console")
    say(request, f"{user.email} is reinstated and can sign in again.", "success")
    return Redirect(request.route_path("console_user", user_id=user.id))


@view_config(route_name="console_user_session_end", request_method="POST", permission=ADMIN_WRITE,
             require_csrf=True)
def end_user_session(request):
    """End one of the user's sessions: its refresh token fails from now on (audited)."""
    user = request.context.user
    session_id = request.POST.get("session_id", "")
    back = Redirect(request.route_path("console_user", user_id=user.id))
    try:
        request.find_service(ITokenService).end_session(user.id, session_id)
    except NotFound:  # already ended or expired: nothing to do, and the page says so
        say(request, "That session had already ended.", "error")
        return back
    request.find_service(IUserService).audit(request.identity.user, "session.end", user, session_id, "console")
    say(request, f"A session of {user.email} was ended: its app must sign in again.", "success")
    return back


@view_config(route_name="console_user_delete", request_method="GET", renderer="confirm_delete.jinja2",
             permission=ADMIN_WRITE)
def confirm_delete(request):
    user = request.context.user
    return {"user": present.admin_user(user, request.find_service(IUserService).interaction_counts(user)),
            "page_title": f"Delete {user.name}"}


@view_config(route_name="console_user_delete", request_method="POST", permission=ADMIN_WRITE, require_csrf=True)
def delete_user(request):
    user = request.context.user
    if request.POST.get("confirm") != "yes":
        raise HTTPBadRequest("The deletion was not confirmed.")
    email = user.email
    try:
        request.find_service(IUserService).delete(user, actor=request.identity.user, channel="console")
    except Conflict as exc:  # the last admin
        say(request, exc.message, "error")
        return Redirect(request.route_path("console_user", user_id=user.id))
    say(request, f"{email} was deleted.", "success")
    if user.id == request.identity.caller.id:
        return Redirect("/admin/login", headers=forget(request))
    return Redirect(request.route_path("console_users"))


@view_config(route_name="console_audit", renderer="audit.jinja2", permission=ADMIN_READ, request_method="GET")
def audit(request):
    page = paging.of(request.find_service(IUserService).audit_log(_int_param(request, "page", 1), 50),
                     present_audit.entry)
    return {"page": page, "page_title": "Audit log", "deleted_user_label": deleted_user_label,
            "page_url": lambda number: request.route_path("console_audit", _query={"page": number})}


# -- movies: search the local table, block and unblock titles ------------------------------
@view_config(route_name="console_movies", renderer="movies.jinja2", permission=ADMIN_READ, request_method="GET")
def movies_page(request):
    q = request.params.get("q", "").strip()[:200]
    blocked = request.find_service(IBlockedMovies)
    page = paging.of(blocked.list(_int_param(request, "page", 1), PER_PAGE), present_blocked.blocked_movie)
    return {"q": q, "found": blocked.search_local(q) if q else [], "blocked": page, "page_title": "Movies",
            "page_url": lambda number: request.route_path("console_movies", _query={"q": q, "page": number})}


_TMDB_ID = colander.SchemaNode(QueryInt(), validator=colander.Range(1, MAX_TMDB_ID))


def _tmdb_id(request) -> int:
    """Decimal digits, as in the API's paths: int() would also read " 5", "1_0" and "١"."""
    try:
        return _TMDB_ID.deserialize(request.POST.get("tmdb_id", ""))
    except colander.Invalid:
        raise ValidationError.field("tmdb_id", "Must be a movie id (digits)", "No such movie id.")


def _back_to_movies(request):
    q = _safe_q(request.POST.get("q", ""))
    return Redirect(request.route_path("console_movies", _query={"q": q} if q else {}))


def _safe_q(value: str) -> str:
    return value.strip()[:200] if isinstance(value, str) else ""


@view_config(route_name="console_movie_block", request_method="POST", permission=ADMIN_WRITE, require_csrf=True)
def block_movie(request):
    tmdb_id = _tmdb_id(request)
    reason = request.POST.get("reason", "").strip()
    if not reason or len(reason) > 500:
        say(request, "Give a reason for blocking the title (at most 500 characters).", "error")
        return _back_to_movies(request)
    row, created = request.find_service(IBlockedMovies).block(tmdb_id, reason, request.identity.user, "console")
    name = row.title or f"#{row.tmdb_id}"
    say(request, f"{name} is blocked." if created else f"{name} was already blocked.", "success")
    return _back_to_movies(request)


@view_config(route_name="console_movie_unblock", request_method="POST", permission=ADMIN_WRITE,
             require_csrf=True)
def unblock_movie(request):
    tmdb_id = _tmdb_id(request)
    service = request.find_service(IBlockedMovies)
    row = service.get(tmdb_id)
    name = (row.title if row is not None else None) or f"#{tmdb_id}"
    service.unblock(tmdb_id, request.identity.user, "console")
    say(request, f"{name} is unblocked.", "success")
    return _back_to_movies(request)


# -- cache: what it holds, purging one key or one kind -------------------------------------
def _inspector(request):
    from ..interfaces import IRedis, find_service
    from ..movie_source.inspect import CacheInspector

    return CacheInspector(request.find_service(IMovieSource), find_service(request.registry, IRedis, None))


@view_config(route_name="console_jobs", renderer="jobs.jinja2", permission=ADMIN_READ, request_method="GET")
def jobs_page(request):
    """Runs of the background jobs, newest first; the page refreshes itself while one is under way."""
    kind = request.GET.get("kind") or None
    if kind is not None and kind not in JOB_KINDS:
        kind = None
    page_number = _int_param(request, "page", 1)
    page = paging.of(request.find_service(IJobService).list(kind, page_number, PER_PAGE), present_jobs.job)

    def page_url(number):
        return request.route_path("console_jobs", _query={k: v for k, v in (("kind", kind), ("page", number)) if v})

    under_way = any(j["state"] in ("queued", "running") for j in page["results"])
    return {"jobs": page, "kind": kind, "kinds": JOB_KINDS, "startable": ADMIN_KINDS, "under_way": under_way,
            "page_url": page_url, "page_title": "Jobs"}


@view_config(route_name="console_jobs_start", request_method="POST", permission=ADMIN_WRITE, require_csrf=True)
def start_job(request):
    kind = request.POST.get("kind", "")
    back = Redirect(request.route_path("console_jobs"))
    if kind not in ADMIN_KINDS:  # said on the page, nothing queued
        say(request, f"Unknown job kind; one of: {', '.join(ADMIN_KINDS)}.", "error")
        return back
    job = request.find_service(IJobService).start(kind)
    request.find_service(IUserService).audit(request.identity.user, "job.start", None, f"{kind} {job.id}", "console")
    say(request, f"Job {kind} queued.", "success")
    return back


@view_config(route_name="console_cache", renderer="cache.jinja2", permission=ADMIN_READ, request_method="GET")
def cache_page(request):
    source = request.find_service(IMovieSource)
    return {"kinds": _inspector(request).summary(), "deployment": metrics.snapshot(),
            "process": source.stats.as_dict(), "page_title": "Cache", "shown": 50}


@view_config(route_name="console_cache_purge", request_method="POST", permission=ADMIN_WRITE, require_csrf=True)
def purge_cache(request):
    inspector = _inspector(request)
    users = request.find_service(IUserService)
    # A search key holds its query JSON-escaped: 200 characters outside the BMP are 2,400.
    key, kind = request.POST.get("key", "")[:4096], request.POST.get("kind", "")[:64]
    if key:
        if kind_of(key) is None:
            raise HTTPBadRequest("Not a movie cache key.")
        if inspector.held(key) is False:  # nothing purged, nothing audited (None, Redis not answering: purged)
            raise ValidationError.field("key", "Not held", "Nothing is cached under that key.")
        inspector.purge_key(key)
        users.audit(request.identity.user, "cache.purge", None, f"key {key}", "console")
        say(request, f"Purged {key}: the next request for it asks the movie source.", "success")
    elif kind:
        if kind not in TTL_KINDS:  # nothing purged, nothing audited
            raise ValidationError.field("kind", "Unknown kind", f"Unknown kind; one of: {', '.join(TTL_KINDS)}.")
        count = inspector.purge_kind(kind)
        users.audit(request.identity.user, "cache.purge", None, f"kind {kind} ({count} entries)", "console")
        say(request, f"Purged {count} {kind} entries.", "success")
    else:
        raise HTTPBadRequest("Nothing to purge.")
    return Redirect(request.route_path("console_cache"))


# -- errors inside /admin are pages, not JSON -----------------------------------------------
def _error_page(request, status: int, title: str, message: str):
    from pyramid.renderers import render_to_response

    response = render_to_response("error.jinja2", {"status": status, "title": title, "message": message,
                                                   "page_title": title}, request=request)
    response.status_int = status
    return response


ADMIN_PATH = r"^/admin"
ERROR_TITLES = {409: "Conflict", 500: "Something went wrong", 503: "Unavailable"}


@forbidden_view_config(path_info=ADMIN_PATH)
def admin_forbidden(exc, request):
    if request.identity is None:
        return Redirect("/admin/login?" + urlencode({"next": request.path_qs}))
    return _error_page(request, 403, "Forbidden", "Your role does not allow this.")


@notfound_view_config(path_info=ADMIN_PATH)
def admin_not_found(exc, request):
    return _error_page(request, 404, "Not found", "There is nothing here.")


@exception_view_config(AppError, path_info=ADMIN_PATH)
def admin_app_error(exc, request):
    response = _error_page(request, exc.status, "Not found" if exc.status == 404 else "Error", exc.message)
    response.headers.update(exc.headers)  # e.g. Retry-After on a 503
    return response


@exception_view_config(HTTPBadRequest, path_info=ADMIN_PATH)
def admin_bad_request(exc, request):
    # A missing or wrong CSRF token lands here too (pyramid's BadCSRFToken).
    return _error_page(request, 400, "Bad request",
                       "The form was not accepted (it may have expired). Go back, reload the page and try again.")


def admin_database_error(exc, request):
    """Database failures: what they mean is decided in database_errors.py; shown here as a page."""
    error = database_error(request, exc)
    if error.status == 503:
        message = "The database is not answering. Try again shortly."
    elif error.status >= 500:
        message = "A database error occurred; it was logged."
    else:
        message = error.message
    response = _error_page(request, error.status, ERROR_TITLES.get(error.status, "Error"), message)
    response.headers.update(error.headers)
    return response


@exception_view_config(Exception, path_info=ADMIN_PATH)
def admin_unexpected(exc, request):
    request_id = getattr(request, "request_id", "-")
    log.error("unexpected error in the console [request_id=%s] %s %s", request_id, request.method,
              request.path_info, exc_info=exc)
    return _error_page(request, 500, "Something went wrong", f"The error was logged (request id {request_id}).")
