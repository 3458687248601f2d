"""Application errors: each carries its HTTP status, contract code and message.

Services raise these; one set of exception views (``api/errors.py``) renders them.
"""
from __future__ import annotations


class AppError(Exception):
    status = 500
    code = "INTERNAL_ERROR"
    message = "An unexpected error occurred."

    def __init__(self, message: str | None = None, details: dict | None = None, headers: dict | None = None,
                 commit: bool = False):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.details = details or {}
        self.headers = headers or {}
        # Keep the work the request did before the error (see db.commit_veto).
        self.commit = commit


class ValidationError(AppError):
    status = 400
    code = "VALIDATION_ERROR"
    message = "The request is not valid."

    @classmethod
    def field(cls, name: str, problem: str, message: str | None = None):
        return cls(message or f"Invalid value for {name}.", details={name: [problem]})


class AuthenticationRequired(AppError):
    status = 401
    code = "AUTHENTICATION_REQUIRED"
    message = "Authentication is required."

    def __init__(self, message=None, details=None, headers=None, commit=False):
        super().__init__(message, details, {"WWW-Authenticate": "Bearer", **(headers or {})}, commit)


class InvalidToken(AppError):
    status = 401
    code = "INVALID_TOKEN"
    message = "The token is invalid or has expired."

    def __init__(self, message=None, details=None, headers=None, commit=False):
        super().__init__(
            message, details, {"WWW-Authenticate": 'Bearer error="invalid_token"', **(headers or {})}, commit
        )


class InvalidLinkToken(AppError):
    """A password-reset or verification link that is unknown, used or expired (400: no session involved)."""
    status = 400
    code = "INVALID_TOKEN"
    message = "The link is invalid, was already used or has expired."


class AccountSuspended(AppError):
    """A suspended account's token or session (401); see AccountSuspendedSignIn for sign-in."""
    status = 401
    code = "ACCOUNT_SUSPENDED"
    message = "This account is suspended."

    def __init__(self, message=None, details=None, headers=None, commit=False):
        super().__init__(
            message, details, {"WWW-Authenticate": 'Bearer error="invalid_token"', **(headers or {})}, commit
        )


class AccountSuspendedSignIn(AppError):
    """The right password for a suspended account: 403, so that a client does not ask again."""
    status = 403
    code = "ACCOUNT_SUSPENDED"
    message = "This account is suspended."


class InvalidCredentials(AppError):
    status = 401
    code = "INVALID_CREDENTIALS"
    message = "Invalid email or password."


class Forbidden(AppError):
    status = 403
    code = "FORBIDDEN"
    message = "You do not have permission to do this."


class NotFound(AppError):
    status = 404
    code = "NOT_FOUND"
    message = "The resource was not found."


class MovieNotFound(NotFound):
    code = "MOVIE_NOT_FOUND"
    message = "The movie was not found."


class UserNotFound(NotFound):
    code = "USER_NOT_FOUND"
    message = "The user was not found."


class InteractionNotFound(NotFound):
    code = "INTERACTION_NOT_FOUND"
    message = "The interaction was not found."


class Conflict(AppError):
    status = 409
    code = "CONFLICT"
    message = "The request conflicts with the current state."


class EmailTaken(Conflict):
    code = "EMAIL_TAKEN"
    message = "An account with this email already exists."


class RateLimited(AppError):
    status = 429
    code = "RATE_LIMITED"
    message = "Too many attempts. Try again later."

    def __init__(self, retry_after: int, message=None):
        retry_after = max(1, int(retry_after))
        super().__init__(message, {"retry_after": retry_after}, {"Retry-After": str(retry_after)})


class UpstreamUnavailable(AppError):
    status = 503
    code = "UPSTREAM_UNAVAILABLE"
    message = "The movie service is unavailable right now. Try again shortly."

    def __init__(self, message=None, details=None, headers=None, commit=False, retry_after: int = 5):
        retry = {"Retry-After": str(max(1, int(retry_after)))}
        super().__init__(message, details, {**retry, **(headers or {})}, commit)


class ServiceUnavailable(AppError):
    status = 503
    code = "SERVICE_UNAVAILABLE"
    message = "The service is temporarily unavailable. Try again shortly."
