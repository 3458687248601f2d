"""Colander schemas for request bodies and query strings.

JSON bodies use strict types: a number where a string is expected (or a string where a
number is expected) is a 400, not silently converted.
"""
from __future__ import annotations

import re
import unicodedata
from datetime import date

import colander

from ..models import ROLE_NAMES

PASSWORD_MIN = 8
PASSWORD_MAX = 128
MAX_PAGE_TMDB = 500
_DECIMAL = re.compile(r"-?[0-9]+")
_UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


class Text(colander.String):
    """A string without NUL characters (PostgreSQL cannot store them; they are never meaningful here)."""

    def deserialize(self, node, cstruct):
        if isinstance(cstruct, str) and "\x00" in cstruct:
            raise colander.Invalid(node, "Must not contain NUL characters")
        return super().deserialize(node, cstruct)


class StrictString(Text):
    """A string, and only a string. "" is kept, so that length validators reject it."""

    def __init__(self, encoding=None, allow_empty=True):
        super().__init__(encoding, allow_empty)

    def deserialize(self, node, cstruct):
        if cstruct is not colander.null and cstruct is not None and not isinstance(cstruct, str):
            raise colander.Invalid(node, "Must be a string")
        if cstruct is None:
            return colander.null
        return super().deserialize(node, cstruct)


class StrictInt(colander.Int):
    def deserialize(self, node, cstruct):
        if cstruct is None or cstruct is colander.null:
            return colander.null
        if isinstance(cstruct, bool) or not isinstance(cstruct, int):
            raise colander.Invalid(node, "Must be an integer")
        return cstruct


class StrictDate(colander.Date):
    def deserialize(self, node, cstruct):
        if cstruct is None or cstruct is colander.null:
            return colander.null
        if not isinstance(cstruct, str) or len(cstruct) != 10:
            raise colander.Invalid(node, "Must be a date as YYYY-MM-DD")
        return super().deserialize(node, cstruct)


class QueryInt(colander.Int):
    """An integer in the URL (a query parameter or a path segment), written in decimal digits
    with an optional minus sign; given empty (``?page=``) it is a 400, not the default.

    Python's ``int()`` alone would also take " 603", "6_03" and "+603", so one resource would
    answer at many URLs (and be cached once for each)."""

    def deserialize(self, node, cstruct):
        if cstruct == "":
            raise colander.Invalid(node, "Must not be empty")
        if isinstance(cstruct, str) and not _DECIMAL.fullmatch(cstruct):
            raise colander.Invalid(node, "Must be an integer")
        return super().deserialize(node, cstruct)


class QueryString(colander.String):
    """A query parameter with a set of values; given empty it is a 400, not the default."""

    def deserialize(self, node, cstruct):
        if cstruct == "":
            raise colander.Invalid(node, "Must not be empty")
        return super().deserialize(node, cstruct)


def trimmed(value):
    return value.strip() if isinstance(value, str) else value


def past_date(node, value):
    if value > date.today():
        raise colander.Invalid(node, "Must not be in the future")
    if value.year < 1900:
        raise colander.Invalid(node, "Must be after 1900-01-01")


# Characters a name must not hold: control (Cc: CR, LF, TAB, ...), format (Cf: bidi overrides,
# zero-width characters), line and paragraph separators (Zl, Zp). A name is written into the
# mails Nexus sends ("Hello <name>"): with these it could carry a paragraph of text of its own
# choosing, or show something else than it holds, in a mail from Nexus to any address.
# The zero-width joiner and non-joiner (U+200D, U+200C) are Cf too, but they are part of how
# Persian and Indic names and emoji sequences are written, and they neither break a line nor
# reorder text: they stay allowed.
HIDDEN_IN_NAMES = frozenset({"Cc", "Cf", "Zl", "Zp"})
JOINERS = frozenset({"\u200c", "\u200d"})


def shown_as_written(node, value):
    hidden = next((ch for ch in value if unicodedata.category(ch) in HIDDEN_IN_NAMES and ch not in JOINERS), None)
    if hidden is not None:
        raise colander.Invalid(node, "Must not contain line breaks, tabs or other control or invisible "
                                     f"formatting characters (found U+{ord(hidden):04X})")


def name_node(**kw):
    return colander.SchemaNode(
        StrictString(), preparer=trimmed, validator=colander.All(colander.Length(1, 100), shown_as_written),
        description="1 to 100 characters, without line breaks, tabs or other control or invisible formatting "
                    "characters (Unicode categories Cc, Cf but the zero-width joiner and non-joiner, Zl, Zp)",
        **kw)


def email_node(**kw):
    return colander.SchemaNode(
        StrictString(), preparer=lambda v: trimmed(v).lower() if isinstance(v, str) else v,
        validator=colander.All(colander.Length(3, 254), colander.Email()), **kw
    )


def password_node(**kw):
    return colander.SchemaNode(StrictString(), validator=colander.Length(PASSWORD_MIN, PASSWORD_MAX), **kw)


def uuid_node(**kw):
    """An id of a user, job, import or session, written as the API writes it: 36 characters,
    lower-case hex with dashes. ``uuid.UUID()`` (and ``colander.uuid``) would also take upper
    case, braces, ``urn:uuid:`` and no dashes: one resource at many URLs, as with QueryInt."""
    return colander.SchemaNode(StrictString(), format="uuid", json_schema={"pattern": f"^{_UUID}$"},
                               validator=colander.Regex(_UUID + r"\Z", "Must be an id as the API gives it, such as "
                                                        "4f7a2a7e-3c1b-4f0e-9a55-1d2c3b4a5f60"), **kw)


def dob_node(**kw):
    return colander.SchemaNode(StrictDate(), validator=past_date, missing=colander.drop,
                               description="YYYY-MM-DD, from 1900-01-01 to today", **kw)


class RegisterBody(colander.MappingSchema):
    examples = [{"name": "Ann", "email": "ann@example.com", "password": "correct horse battery",
                 "date_of_birth": "1990-05-17"}]
    name = name_node()
    email = email_node()
    password = password_node()
    date_of_birth = dob_node()


class LoginBody(colander.MappingSchema):
    examples = [{"email": "ann@example.com", "password": "correct horse battery"}]
    email = colander.SchemaNode(StrictString(), preparer=trimmed, validator=colander.Length(1, 254))
    password = colander.SchemaNode(StrictString(), validator=colander.Length(1, 1024))


class RefreshBody(colander.MappingSchema):
    examples = [{"refresh_token": "opaque-refresh-token"}]
    refresh_token = colander.SchemaNode(StrictString(), validator=colander.Length(1, 512))


class PasswordResetBody(colander.MappingSchema):
    examples = [{"email": "ann@example.com"}]
    # Any text up to an address's length: a malformed address gets the same 202 as an unknown one.
    email = colander.SchemaNode(StrictString(), preparer=trimmed, validator=colander.Length(1, 254))


def link_token_node(**kw):
    return colander.SchemaNode(StrictString(), validator=colander.Length(1, 512),
                               description="The token of the mailed link (its `token` query parameter)", **kw)


class PasswordResetConfirmBody(colander.MappingSchema):
    examples = [{"token": "token-from-the-mailed-link", "password": "a new long password"}]
    token = link_token_node()
    password = password_node()


class VerifyEmailBody(colander.MappingSchema):
    examples = [{"token": "token-from-the-mailed-link"}]
    token = link_token_node()


class DeleteAccountBody(colander.MappingSchema):
    examples = [{"current_password": "your current password"}]
    current_password = colander.SchemaNode(StrictString(), validator=colander.Length(1, 1024))


class ProfileUpdateBody(colander.MappingSchema):
    name = name_node(missing=colander.drop)
    date_of_birth = dob_node()
    email = email_node(missing=colander.drop)
    password = password_node(missing=colander.drop)
    current_password = colander.SchemaNode(StrictString(), validator=colander.Length(1, 1024),
                                           missing=colander.drop)


class RoleChangeBody(colander.MappingSchema):
    examples = [{"user_id": "4f7a2a7e-3c1b-4f0e-9a55-1d2c3b4a5f60", "role": "moderator"}]
    user_id = uuid_node()
    # The service checks the name (400 for an unknown one); the document names the roles.
    role = colander.SchemaNode(StrictString(), validator=colander.Length(1, 32),
                               json_schema={"enum": list(ROLE_NAMES)})


class UserPath(colander.MappingSchema):
    user_id = uuid_node(description="A user id from GET /api/admin/users")


class SuspendBody(colander.MappingSchema):
    examples = [{"reason": "Spam in reviews, reported three times"}]
    reason = colander.SchemaNode(StrictString(), validator=colander.Length(1, 500),
                                 description="Why (shown to administrators and kept in the audit log)")


def page_node(max_page=None):
    return colander.SchemaNode(QueryInt(), missing=1, validator=colander.Range(1, max_page),
                               description="Page number, from 1" + (f" to {max_page}" if max_page else ""))


def per_page_node():
    return colander.SchemaNode(QueryInt(), missing=20, validator=colander.Range(1, 100),
                               description="Items per page (1..100)")


# Local lists: pages past the end are empty; the cap keeps OFFSET inside PostgreSQL's range.
MAX_PAGE_LOCAL = 1_000_000


class LocalPaging(colander.MappingSchema):
    page = page_node(MAX_PAGE_LOCAL)
    per_page = per_page_node()


class AdminUsersQuery(LocalPaging):
    q = colander.SchemaNode(Text(), missing=colander.drop, validator=colander.Length(0, 200),
                            description="Matches name or email")


def request_schema(body=None, querystring=None):
    """A Cornice request schema with the given body and query string schemas."""
    schema = colander.MappingSchema()
    if body is not None:
        schema.add(body(name="body"))
    if querystring is not None:
        schema.add(querystring(name="querystring"))
    return schema


# -- movies ---------------------------------------------------------------------
MAX_TMDB_ID = 2**31 - 1


class LanguageTag(QueryString):
    """A BCP 47 language tag (``fr-FR``), normalized (``FR-fr`` -> ``fr-FR``); ill-formed: 400."""

    def deserialize(self, node, cstruct):
        from ..movie_source.discover import normalize_language

        value = super().deserialize(node, cstruct)
        if value is colander.null:
            return value
        try:
            return normalize_language(value)
        except ValueError:
            raise colander.Invalid(node, "Must be a language tag such as en-US or fr-FR") from None


def language_node():
    return colander.SchemaNode(
        LanguageTag(), name="language", missing=colander.drop,
        json_schema={"pattern": r"^[A-Za-z]{2,3}(-[A-Za-z]{4})?(-([A-Za-z]{2}|[0-9]{3}))?$",
                     "examples": ["fr-FR"]},
        description="Language of titles and overviews (BCP 47, e.g. fr-FR); default nexus.default_language")


class LanguageQuery(colander.MappingSchema):
    language = language_node()


class TmdbIdPath(colander.MappingSchema):
    tmdb_id = colander.SchemaNode(QueryInt(), validator=colander.Range(1, MAX_TMDB_ID),
                                  description="TMDb movie id (MovieLens id with the offline catalog)")


class TmdbPaging(colander.MappingSchema):
    page = page_node(MAX_PAGE_TMDB)
    language = language_node()


class TrendingQuery(TmdbPaging):
    window = colander.SchemaNode(QueryString(), missing="day", validator=colander.OneOf(["day", "week"]))


class SearchQuery(TmdbPaging):
    query = colander.SchemaNode(Text(), preparer=trimmed, validator=colander.Length(1, 200),
                                description="Title words (1..200 characters)")
    year = colander.SchemaNode(QueryInt(), missing=colander.drop, validator=colander.Range(1874, 2100))


def path_request_schema(path, querystring=None, body=None):
    schema = request_schema(body, querystring)
    schema.add(path(name="path"))
    return schema


# -- preferences, interactions, recommendations ----------------------------------
from ..models import INTERACTION_TYPES  # noqa: E402 (one list of types)
# Any list of ids in a request: beyond this, 400 (each id may cost an upstream call).
MAX_IDS_PER_LIST = 50


class StrictSequence(colander.Sequence):
    """A JSON array, and only an array (null or an object is a 400)."""

    def deserialize(self, node, cstruct):
        if cstruct is None or not isinstance(cstruct, list):
            raise colander.Invalid(node, "Must be a list")
        # Refuse an over-long list before deserializing its items: a 1 MiB body holds some
        # 200,000 ids, and checking each one first costs a worker 100+ ms for a certain 400.
        if getattr(node.validator, "max", None) is not None and len(cstruct) > node.validator.max:
            node.validator(node, cstruct)
        return super().deserialize(node, cstruct)


def id_list_node(name, max_items, **kw):
    return colander.SchemaNode(
        StrictSequence(), colander.SchemaNode(StrictInt(), name="id", validator=colander.Range(1, MAX_TMDB_ID)),
        name=name, missing=colander.drop, validator=colander.Length(0, max_items), **kw)


class ActorNode(colander.MappingSchema):
    id = colander.SchemaNode(StrictInt(), validator=colander.Range(1, MAX_TMDB_ID))
    name = colander.SchemaNode(StrictString(), preparer=trimmed, validator=colander.Length(0, 200),
                               missing=None)


class PreferencesBody(colander.MappingSchema):
    examples = [{"genre_ids": [28, 878], "actor_ids": [6384], "movie_ids": [603]}]
    genre_ids = id_list_node("genre_ids", MAX_IDS_PER_LIST, description="Replaces the favorite genres (TMDb genre ids)")
    actor_ids = id_list_node("actor_ids", MAX_IDS_PER_LIST, description="Replaces the favorite actors (TMDb person ids)")
    actors = colander.SchemaNode(StrictSequence(), ActorNode(name="actor"), missing=colander.drop,
                                 validator=colander.Length(0, MAX_IDS_PER_LIST),
                                 description="Alternative to actor_ids that also names them: [{id, name}]")
    movie_ids = id_list_node("movie_ids", MAX_IDS_PER_LIST, description="Replaces the favorite movies (tmdb ids)")


class InteractionsQuery(LocalPaging):
    type = colander.SchemaNode(QueryString(), missing=colander.drop,
                               validator=colander.OneOf(INTERACTION_TYPES))


class InteractionBody(colander.MappingSchema):
    examples = [{"tmdb_id": 603, "interaction_type": "liked"}]
    tmdb_id = colander.SchemaNode(StrictInt(), validator=colander.Range(1, MAX_TMDB_ID))
    interaction_type = colander.SchemaNode(StrictString(), validator=colander.OneOf(INTERACTION_TYPES))


class InteractionPath(colander.MappingSchema):
    interaction_id = colander.SchemaNode(QueryInt(), validator=colander.Range(1, 2**31 - 1))


class SessionPath(colander.MappingSchema):
    session_id = uuid_node(description="A session id from GET /api/user/sessions")


class GenreIds(QueryString):
    """``genre_ids=18,28``: comma-separated TMDb genre ids, each one known."""

    def deserialize(self, node, cstruct):
        from ..movie_source.genres import TMDB_GENRES

        value = super().deserialize(node, cstruct)
        if value is colander.null:
            return value
        parts = [p.strip() for p in value.split(",")]
        if not all(p.isascii() and p.isdigit() and len(p) <= 9 for p in parts):
            raise colander.Invalid(node, "Must be comma-separated genre ids, e.g. 18,28")
        ids = sorted({int(p) for p in parts})
        known = {g["id"] for g in TMDB_GENRES}
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise colander.Invalid(node, f"Unknown genre id(s): {', '.join(map(str, unknown))} (see GET /api/genres)")
        if len(ids) > 10:
            raise colander.Invalid(node, "At most 10 genre ids")
        return ids


def _years_in_order(node, value):
    if value.get("year_from") is not None and value.get("year_to") is not None and value["year_from"] > value["year_to"]:
        error = colander.Invalid(node)
        error["year_from"] = "Must not be after year_to"
        raise error


class DiscoverQuery(TmdbPaging):
    validator = staticmethod(_years_in_order)
    genre_ids = colander.SchemaNode(GenreIds(), missing=colander.drop,
                                    description="Comma-separated genre ids; a movie must have all of them")
    year_from = colander.SchemaNode(QueryInt(), missing=colander.drop, validator=colander.Range(1874, 2100),
                                    description="Released in this year or later")
    year_to = colander.SchemaNode(QueryInt(), missing=colander.drop, validator=colander.Range(1874, 2100),
                                  description="Released in this year or earlier")
    min_votes = colander.SchemaNode(QueryInt(), missing=0, validator=colander.Range(0, 10_000_000),
                                    description="At least this many votes")
    sort = colander.SchemaNode(QueryString(), missing="popularity",
                               validator=colander.OneOf(["popularity", "rating", "release_date"]),
                               description="Most popular, best rated or newest first")


class RecommendationsQuery(LocalPaging):
    language = language_node()


class BlockMovieBody(colander.MappingSchema):
    examples = [{"tmdb_id": 603, "reason": "Rights holder's take-down notice"}]
    tmdb_id = colander.SchemaNode(StrictInt(), validator=colander.Range(1, MAX_TMDB_ID))
    reason = colander.SchemaNode(StrictString(), validator=colander.Length(1, 500))
