"""Authorization: permission names and the contexts whose ``__acl__`` grant them."""
from __future__ import annotations

from pyramid.authorization import ALL_PERMISSIONS, Allow, Authenticated, DENY_ALL, Everyone

from .interfaces import IUserService
from .security import role_principal

# Permissions, named "scope:action".
PUBLIC = "public:read"
SELF = "account:self"
ADMIN_READ = "admin:read"
ADMIN_WRITE = "admin:write"


class Root:
    """The default context: public reads, self-service for any signed-in user, admin rules."""

    __acl__ = [
        (Allow, Everyone, PUBLIC),
        (Allow, Authenticated, SELF),
        (Allow, role_principal("admin"), ALL_PERMISSIONS),
        (Allow, role_principal("moderator"), ADMIN_READ),
        DENY_ALL,
    ]

    def __init__(self, request):
        self.request = request


class UserResource(Root):
    """A user addressed by id in an admin URL.

    The user is loaded lazily by the view, after the permission check, so that a caller
    without the admin permission learns nothing about which ids exist.
    """

    def __init__(self, request):
        super().__init__(request)
        self.user_id = request.matchdict.get("user_id")

    @property
    def user(self):
        return self.request.find_service(IUserService).get(self.user_id)
