"""Schema migrations with alembic: one shared env, two version branches per database.

Every service database carries the kernel tables (branch ``kernel``, versions under
``services/kernel/migrations/versions``) and the service's own tables (branch ``<service>``, versions under
``services/<service>/migrations/versions``). ``upgrade_database`` brings both to their heads; services call it at
start-up instead of ``create_all``. ``autogenerate_revision`` writes a new revision for one branch
(``sifund db revision``).
"""

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, MetaData

from services.kernel.models import SQLITE_ONLY, kernel_metadata
import services.kernel.documents.models  # noqa: F401, E402  the registry of issued documents is a kernel table

KERNEL_DIR = Path(__file__).parent / "migrations"
SERVICES_DIR = Path(__file__).parent.parent


def versions_dir(branch: str) -> Path:
    """``kernel``, a service name, or ``gateway`` (the identity store and its audit chain)."""
    if branch == "kernel":
        return KERNEL_DIR / "versions"
    if branch == "gateway":
        return SERVICES_DIR.parent / "gateway" / "migrations" / "versions"
    return SERVICES_DIR / branch / "migrations" / "versions"


def alembic_config(engine: Engine, service: str, metadata: MetaData) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(KERNEL_DIR))
    cfg.set_main_option("version_locations", f"{versions_dir('kernel')} {versions_dir(service)}")
    cfg.set_main_option("version_path_separator", "space")
    cfg.set_main_option("path_separator", "space")
    cfg.attributes["engine"] = engine
    cfg.attributes["target_metadata"] = [kernel_metadata, metadata]
    return cfg


def upgrade_database(engine: Engine, service: str, metadata: MetaData) -> None:
    command.upgrade(alembic_config(engine, service, metadata), "heads")


def compared_on(dialect_name: str):  # noqa: ANN201  alembic's include_object hook
    """Which of the models' objects alembic compares with a database of ``dialect_name``: all but, elsewhere than on
    SQLite, a constraint marked ``SQLITE_ONLY`` (``info``)."""
    def include(obj, name, type_, reflected, compare_to) -> bool:  # noqa: ANN001, ARG001
        return dialect_name == "sqlite" or reflected or not getattr(obj, "info", {}).get(SQLITE_ONLY, False)
    return include


def pending_schema_changes(engine: Engine, metadata: MetaData) -> list:
    """Differences between the migrated database and the models: must be empty (a test checks it)."""
    with engine.connect() as connection:
        ctx = MigrationContext.configure(connection, opts={"compare_type": True,
                                                            "include_object": compared_on(connection.dialect.name)})
        return compare_metadata(ctx, [kernel_metadata, metadata])


def autogenerate_revision(engine: Engine, service: str, metadata: MetaData, branch: str, message: str) -> None:
    """Write a revision for ``branch`` (``kernel`` or ``service``) from the difference between models and database."""
    from alembic.script import ScriptDirectory

    cfg = alembic_config(engine, service, metadata)
    upgrade_database(engine, service, metadata)
    if branch == "kernel":
        cfg.attributes["target_metadata"] = [kernel_metadata]
    script = ScriptDirectory.from_config(cfg)
    has_branch = any(branch in (r.branch_labels or ()) for r in script.walk_revisions())
    kwargs = {"head": f"{branch}@head"} if has_branch else {"head": "base", "branch_label": branch}
    versions_dir(branch).mkdir(parents=True, exist_ok=True)
    command.revision(cfg, message=message, autogenerate=True, version_path=str(versions_dir(branch)), **kwargs)
