"""Every SQLite connection of a service is set up alike: WAL, foreign keys, a committed transaction synced to disk,
SQLite's own wait for the lock, and the page cache and WAL size the settings give (``Settings.sqlite_cache_mb``,
``Settings.sqlite_wal_pages``)."""

from services.kernel.db import SQLITE_CACHE_MB, SQLITE_WAL_PAGES, make_engine
from services.kernel.settings import Settings


def pragmas(engine) -> dict[str, object]:  # noqa: ANN001
    with engine.connect() as connection:
        driver = connection.connection.driver_connection
        return {name: driver.execute(f"PRAGMA {name}").fetchone()[0]
                for name in ("journal_mode", "foreign_keys", "synchronous", "busy_timeout", "cache_size",
                             "wal_autocheckpoint", "journal_size_limit")}


def test_a_connection_has_the_services_pragmas_and_the_settings_cache(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}", sqlite_cache_mb=8, sqlite_wal_pages=2000)
    try:
        assert pragmas(engine) == {"journal_mode": "wal", "foreign_keys": 1, "synchronous": 2,
                                   "busy_timeout": 30000, "cache_size": -8 * 1024, "wal_autocheckpoint": 2000,
                                   "journal_size_limit": 2000 * 4096}
    finally:
        engine.dispose()


def test_the_default_cache_is_the_settings_default(tmp_path):
    assert Settings.model_fields["sqlite_cache_mb"].default == SQLITE_CACHE_MB
    assert Settings.model_fields["sqlite_wal_pages"].default == SQLITE_WAL_PAGES
    engine = make_engine(f"sqlite:///{tmp_path / 'b.db'}")
    try:
        assert pragmas(engine)["cache_size"] == -SQLITE_CACHE_MB * 1024
        assert pragmas(engine)["wal_autocheckpoint"] == SQLITE_WAL_PAGES
    finally:
        engine.dispose()


def test_the_wal_is_checkpointed_and_cut_back_at_the_settings_size(tmp_path):
    """Fifty 1 MB transactions with a 100-page (400 KiB) WAL: the file is copied back and cut short as it goes,
    instead of growing by the whole 50 MB (what autocheckpoint off, or no size limit after a burst, would leave)."""
    path = tmp_path / "c.db"
    engine = make_engine(f"sqlite:///{path}", sqlite_wal_pages=100)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE blob_row (id INTEGER PRIMARY KEY, body BLOB)")
        for _ in range(50):
            with engine.begin() as connection:
                connection.exec_driver_sql("INSERT INTO blob_row (body) VALUES (randomblob(1048576))")
        wal = path.with_name(path.name + "-wal")
        assert wal.stat().st_size < 4 * 1048576
    finally:
        engine.dispose()
