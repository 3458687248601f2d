"""Model objects to the contract's JSON objects."""
from __future__ import annotations


def user_json(user) -> dict:
    return {
        "id": str(user.id),
        "name": user.name,
        "email": user.email,
        "date_of_birth": user.date_of_birth,
        "roles": user.role_names,
        "created_at": user.created_at,
        "updated_at": user.updated_at,
    }
