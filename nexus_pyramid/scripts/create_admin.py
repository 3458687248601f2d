"""nexus-create-admin <ini> --email E --name N: create an administrator (or make a user one).

The password comes from the NEXUS_ADMIN_PASSWORD environment variable or, when it is
not set, from a prompt (asked twice). It is never accepted on the command line, where
it would end up in the shell history and the process list.
"""
from __future__ import annotations

import argparse
import getpass
import os
import sys

import colander

from ..api.schemas import PASSWORD_MAX, PASSWORD_MIN, email_node
from ..interfaces import IUserService
from .common import bootstrap_app, write_transaction


def read_password() -> str:
    password = os.environ.get("NEXUS_ADMIN_PASSWORD")
    if password is None:
        if not sys.stdin.isatty():
            sys.exit("error: set NEXUS_ADMIN_PASSWORD or run in a terminal to be prompted")
        password = getpass.getpass("Password: ")
        if getpass.getpass("Password (again): ") != password:
            sys.exit("error: the passwords do not match")
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        sys.exit(f"error: the password must be {PASSWORD_MIN} to {PASSWORD_MAX} characters")
    return password


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config_uri")
    parser.add_argument("--email", required=True)
    parser.add_argument("--name", required=True)
    args = parser.parse_args(argv)
    try:
        email = email_node(name="email").deserialize(args.email)
    except colander.Invalid:
        sys.exit("error: not a valid email address")
    name = args.name.strip()
    if not 1 <= len(name) <= 100:
        sys.exit("error: the name must be 1 to 100 characters")

    with bootstrap_app(args.config_uri) as env:
        request = env["request"]
        with write_transaction(request):
            users = request.find_service(IUserService)
            existing = users.by_email(email)
            if existing is not None:
                users.assign_role(existing, "admin", channel="cli")
                print(f"{email} already has an account; it now has the admin role")
            else:
                user = users.register(name, email, read_password(), roles=("user", "admin"))
                users.audit(None, "admin.create", user, None, "cli")
                print(f"admin {email} created")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
