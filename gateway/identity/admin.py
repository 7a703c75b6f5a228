"""Local administration of the identity store (the ``sifund user|client|demo`` commands)."""

import getpass
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import select
from sqlmodel import Session

from gateway.identity import service
from gateway.identity.conflicts import seed_default_rules
from gateway.identity.models import SystemClient, UserAccount, metadata
from gateway.identity.passwords import generate_password, verify_secret
from services.kernel import context
from services.kernel.db import make_engine, unit_of_work
from services.kernel.migrations import upgrade_database
from services.kernel.settings import Settings


@contextmanager
def identity_session(settings: Settings, actor: str | None = None) -> Iterator[Session]:
    """A session on the gateway database, migrated, acting as ``actor`` (default: the OS user at the console)."""
    engine = make_engine(settings.database_url("gateway"))
    upgrade_database(engine, "gateway", metadata)
    try:
        with unit_of_work(engine) as session:  # the command's one transaction
            seed_default_rules(session)
            with context.trace(actor=context.Actor(id=actor or f"cli:{getpass.getuser()}", role="it_admin")):
                yield session
    finally:
        engine.dispose()


DEMO_STAFF = (
    "agency_clerk", "agency_reviewer", "agency_approver", "accountant", "cashier", "it_admin",
    "internal_auditor", "oversight_officer", "finance_officer",
)
DEMO_CLIENTS = (("demo_tax", "税务局征收系统", "tax_system"), ("demo_partner", "民政/卫健数据共享", "partner_system"),
                ("demo_bank", "代发银行", "bank_system"))


def identity_is_empty(settings: Settings) -> bool:
    with identity_session(settings, actor="system:launcher") as session:
        return session.execute(select(UserAccount.id).limit(1)).first() is None


def create_demo(settings: Settings) -> list[dict]:
    """One demo user per staff role and one client per system role, with fresh random credentials."""
    created = []
    with identity_session(settings, actor="system:demo") as session:
        for role in DEMO_STAFF:
            username = f"demo_{role}"
            if session.execute(select(UserAccount.id).where(UserAccount.username == username)).first():
                continue
            password = generate_password()
            service.create_user(session, settings, username=username, display_name=f"演示用户（{role}）",
                                unit="演示社保经办机构" if role != "finance_officer" else "演示财政局",
                                region=settings.region, password=password)
            service.grant_role(session, username=username, role=role, reason="演示环境")
            created.append({"kind": "user", "username": username, "password": password, "role": role})
        for client_id, name, role in DEMO_CLIENTS:
            if session.execute(select(SystemClient.id).where(SystemClient.client_id == client_id)).first():
                continue
            _client, secret = service.create_client(session, client_id=client_id, name=name, role=role,
                                                    region=settings.region)
            created.append({"kind": "client", "username": client_id, "password": secret, "role": role})
    return created


# The oversight scheduler's system client (services/oversight/scheduler): it reads the other components' audit chains
# and the gateway's identity reports, which answer oversight officers.
SCHEDULER_CLIENT = ("oversight_scheduler", "基金监督定时任务", "oversight_officer")


def scheduler_secret_file(settings: Settings) -> Path:
    return settings.data_dir / "keys" / "oversight-scheduler.client"


def ensure_scheduler_client(settings: Settings) -> tuple[str, str, bool] | None:
    """The scheduler's client for this data directory: ``(client_id, secret, created)``. Created on first start with
    its secret kept (mode 0600, like the dev signing key) under ``<data dir>/keys`` for the next starts. None when
    the client exists but its secret is not there (or no longer matches): it cannot be recovered from the hash."""
    client_id, name, role = SCHEDULER_CLIENT
    path = scheduler_secret_file(settings)
    kept = path.read_text().split() if path.exists() else []
    with identity_session(settings, actor="system:launcher") as session:
        client = session.execute(select(SystemClient).where(SystemClient.client_id == client_id)).scalar_one_or_none()
        if client is not None:
            if len(kept) == 2 and kept[0] == client_id and verify_secret(client.secret_hash, kept[1]):
                return client_id, kept[1], False
            return None
        _client, secret = service.create_client(session, client_id=client_id, name=name, role=role,
                                                region=settings.region)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"{client_id}\n{secret}\n")
    tmp.replace(path)
    return client_id, secret, True
