"""/api/admin/*: user and role management (admin; moderators may read)."""
from __future__ import annotations

from ..authz import ADMIN_READ, ADMIN_WRITE, UserResource
from ..interfaces import IUserService
from . import schemas
from ..presenters import paging, users as present
from .envelope import success
from .service import ApiService

users = ApiService(name="admin_users", path="/api/admin/users", description="Search users")
user_detail = ApiService(name="admin_user", path="/api/admin/users/{user_id}", factory=UserResource,
                         description="One user")
assign = ApiService(name="admin_roles_assign", path="/api/admin/roles/assign", description="Give a user a role")
suspend = ApiService(name="admin_user_suspend", path="/api/admin/users/{user_id}/suspend", factory=UserResource,
                     description="Suspend an account: no sign-in, every token and session refused")
reinstate = ApiService(name="admin_user_reinstate", path="/api/admin/users/{user_id}/reinstate",
                       factory=UserResource, description="Lift a suspension")
revoke = ApiService(name="admin_roles_revoke", path="/api/admin/roles/revoke", description="Take a role away")
# A malformed id is a 400, as for jobs, imports and sessions; checked after the permission.
_USER = schemas.path_request_schema(schemas.UserPath)


@users.get(schema=schemas.request_schema(querystring=schemas.AdminUsersQuery), returns=present.UserPage,
           permission=ADMIN_READ, error_codes=(401, 403))
def list_users(request):
    query = request.validated["querystring"]
    page = request.find_service(IUserService).search(query.get("q"), query["page"], query["per_page"])
    return success(paging.of(page, present.user))


@user_detail.get(schema=_USER, returns=present.AdminUser, permission=ADMIN_READ, error_codes=(401, 403, 404))
def get_user(request):
    user = request.context.user
    return success(present.admin_user(user, request.find_service(IUserService).interaction_counts(user)))


@user_detail.delete(schema=_USER, permission=ADMIN_WRITE, error_codes=(401, 403, 404, 409))
def delete_user(request):
    users = request.find_service(IUserService)
    users.delete(request.context.user, actor=request.identity.user, channel="api")
    return success(None, "User deleted")


def _role_change(request, change):
    body = request.validated["body"]
    user = request.find_service(IUserService).get(body["user_id"])
    return success(present.user(change(user, body["role"], actor=request.identity.user, channel="api")),
                   "Roles updated")


@assign.post(schema=schemas.request_schema(schemas.RoleChangeBody), returns=present.User,
             permission=ADMIN_WRITE, error_codes=(401, 403, 404))
def assign_role(request):
    return _role_change(request, request.find_service(IUserService).assign_role)


@revoke.post(schema=schemas.request_schema(schemas.RoleChangeBody), returns=present.User,
             permission=ADMIN_WRITE, error_codes=(401, 403, 404, 409))
def revoke_role(request):
    return _role_change(request, request.find_service(IUserService).revoke_role)


@suspend.post(schema=schemas.path_request_schema(schemas.UserPath, body=schemas.SuspendBody),
              returns=present.AdminUser, permission=ADMIN_WRITE, error_codes=(401, 403, 404, 409))
def suspend_user(request):
    users = request.find_service(IUserService)
    user = users.suspend(request.context.user, request.validated["body"]["reason"], actor=request.identity.user,
                         channel="api")
    return success(present.admin_user(user, users.interaction_counts(user)), "User suspended")


@reinstate.post(schema=_USER, returns=present.AdminUser, permission=ADMIN_WRITE, error_codes=(401, 403, 404))
def reinstate_user(request):
    users = request.find_service(IUserService)
    user = users.reinstate(request.context.user, actor=request.identity.user, channel="api")
    return success(present.admin_user(user, users.interaction_counts(user)), "User reinstated")
