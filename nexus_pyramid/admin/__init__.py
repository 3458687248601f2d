"""The admin console (/admin): Jinja2 pages, session sign-in, CSRF on every form."""
from ..authz import UserResource
from ..database_errors import DATABASE_ERRORS


def includeme(config):
    config.include("pyramid_jinja2")
    config.add_jinja2_search_path("nexus_pyramid.admin:templates", name=".jinja2")
    config.add_static_view("admin/static", "nexus_pyramid.admin:static", cache_max_age=3600)
    config.add_route("console_login", "/admin/login")
    config.add_route("console_logout", "/admin/logout")
    config.add_route("console_home", "/admin")
    config.add_route("console_users", "/admin/users")
    config.add_route("console_user", "/admin/users/{user_id}", factory=UserResource)
    config.add_route("console_user_roles", "/admin/users/{user_id}/roles", factory=UserResource)
    config.add_route("console_user_suspend", "/admin/users/{user_id}/suspend", factory=UserResource)
    config.add_route("console_user_reinstate", "/admin/users/{user_id}/reinstate", factory=UserResource)
    config.add_route("console_user_delete", "/admin/users/{user_id}/delete", factory=UserResource)
    config.add_route("console_user_session_end", "/admin/users/{user_id}/sessions/end", factory=UserResource)
    config.add_route("console_audit", "/admin/audit")
    config.add_route("console_movies", "/admin/movies")
    config.add_route("console_jobs", "/admin/jobs")
    config.add_route("console_jobs_start", "/admin/jobs/start")
    config.add_route("console_cache", "/admin/cache")
    config.add_route("console_cache_purge", "/admin/cache/purge")
    config.add_route("console_movie_block", "/admin/movies/block")
    config.add_route("console_movie_unblock", "/admin/movies/unblock")
    from .views import ADMIN_PATH, admin_database_error, check_console_forms

    # Under the permission check, over the CSRF check (which reads the form's token).
    config.add_view_deriver(check_console_forms, under="secured_view", over="csrf_view")
    config.scan(".views")

    for failure in DATABASE_ERRORS:
        config.add_exception_view(admin_database_error, context=failure, path_info=ADMIN_PATH)
