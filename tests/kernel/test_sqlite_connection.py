"""Every SQLite connection of a service is set up alike: WAL, foreign keys, a committed transaction synced to disk,
SQLite's own wait for the lock, and the page cache the settings give (``Settings.sqlite_cache_mb``)."""

from services.kernel.db import SQLITE_CACHE_MB, make_engine
from services.kernel.settings import Settings


def pragmas(engine) -> dict[str, object]:  # noqa: ANN001
    with engine.connect() as connection:
        driver = connection.connection.driver_connection
        return {name: driver.execute(f"PRAGMA {name}").fetchone()[0]
                for name in ("journal_mode", "foreign_keys", "synchronous", "busy_timeout", "cache_size")}


def test_a_connection_has_the_services_pragmas_and_the_settings_cache(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}", sqlite_cache_mb=8)
    try:
        assert pragmas(engine) == {"journal_mode": "wal", "foreign_keys": 1, "synchronous": 2,
                                   "busy_timeout": 30000, "cache_size": -8 * 1024}
    finally:
        engine.dispose()


def test_the_default_cache_is_the_settings_default(tmp_path):
    assert Settings.model_fields["sqlite_cache_mb"].default == SQLITE_CACHE_MB
    engine = make_engine(f"sqlite:///{tmp_path / 'b.db'}")
    try:
        assert pragmas(engine)["cache_size"] == -SQLITE_CACHE_MB * 1024
    finally:
        engine.dispose()
