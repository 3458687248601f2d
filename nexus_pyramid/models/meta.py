from datetime import datetime, timezone

from sqlalchemy import MetaData, String, bindparam, func, select
from sqlalchemy.orm import DeclarativeBase

# A naming convention makes constraint names predictable, so that migrations can
# refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def dialect_insert(bind, table):
    """``INSERT`` for ``table`` with the ON CONFLICT clauses of the database behind ``bind``
    (a Session, Engine or Connection): PostgreSQL's or SQLite's.

    The dialect's module is imported here, not where the statements are written: a
    PostgreSQL process never loads SQLite's (the engine already loaded its own dialect).
    """
    dialect = bind.dialect if hasattr(bind, "dialect") else bind.get_bind().dialect
    if dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


def take_turns(session, name: str) -> None:
    """Callers that name the same lock run one at a time from here to the end of the current
    transaction: for a look-then-write that two requests or jobs would otherwise interleave,
    each missing the other's uncommitted rows. On PostgreSQL a transaction-scoped advisory
    lock (it also starts the transaction); SQLite writes one transaction at a time anyway."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_TURNS, {"name": name})


# Built once: the lock's name is its parameter.
_TURNS = select(func.pg_advisory_xact_lock(func.hashtextextended(bindparam("name", type_=String), 0)))


def in_ids(column, name: str, dialect_name: str):
    """``column IN (<the list bound as name>)``, for a list bound at each execution.

    On PostgreSQL: ``column = ANY(:name)``, the list sent as one array parameter. An expanding
    ``IN`` renders one bound parameter per value at each execution, in Python: for the few
    hundred ids of a recommendations page, a few percent of its time. Elsewhere (SQLite): the
    expanding ``IN``. Statements that use it are built per dialect name."""
    from sqlalchemy import any_, bindparam

    if dialect_name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


from sqlalchemy import DateTime  # noqa: E402
from sqlalchemy.types import TypeDecorator  # noqa: E402


class UTCDateTime(TypeDecorator):
    """A timezone-aware timestamp on every backend (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        if value is not None and dialect.name == "sqlite":
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value
