"""Alembic environment: the database comes from the app's ini (and DATABASE_URL)."""
from alembic import context
from pyramid.paster import get_appsettings, setup_logging

from nexus_pyramid import settings as nexus_settings
from nexus_pyramid.db import get_engine
from nexus_pyramid.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    if config.attributes.get("url"):
        return config.attributes["url"]
    raw = get_appsettings(config.config_file_name, name="main")
    return nexus_settings.load(raw, check=False)["sqlalchemy.url"]


def run_migrations_offline():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    if config.config_file_name and not config.attributes.get("url"):
        setup_logging(config.config_file_name)
    # Migrations may run long: no statement timeout (the database policy still bounds connecting).
    engine = get_engine({"sqlalchemy.url": _url(), "db.statement_timeout": "0"}, "sqlalchemy.")
    if engine.dialect.name == "sqlite":
        _foreign_keys_off_while_migrating(engine)
    try:
        with engine.connect() as connection:
            _run(connection)
            connection.commit()
            if engine.dialect.name == "sqlite":
                _check_foreign_keys(connection)
    finally:
        engine.dispose()


def _foreign_keys_off_while_migrating(engine):
    """SQLite alters a table by copying it into a new one and dropping the old (Alembic's batch
    mode). With foreign keys on, as the app's engine turns them (db.py), dropping ``users`` or
    ``movies`` would run their ON DELETE CASCADE and erase every row that refers to them
    (interactions, preferences, tokens). Registered after the app's own listener, so it wins."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _off(dbapi_connection, connection_record):
        dbapi_connection.execute("PRAGMA foreign_keys=OFF")


def _check_foreign_keys(connection):
    """With the checks off while tables were copied, say so if a migration left a row pointing nowhere."""
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    connection.commit()
    if broken:
        raise RuntimeError(f"the migration left rows whose foreign keys point nowhere: {broken[:10]}")


def _run(connection):
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True,
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
