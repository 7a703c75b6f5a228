"""Local administration of the identity store (the ``sifund user|client|demo`` commands)."""

import getpass
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import select
from sqlmodel import Session

from gateway.identity import service
from gateway.identity.conflicts import seed_default_rules
from gateway.identity.models import SystemClient, UserAccount, metadata
from gateway.identity.passwords import generate_password
from services.kernel import context
from services.kernel.db import make_engine
from services.kernel.migrations import upgrade_database
from services.kernel.settings import Settings


@contextmanager
def identity_session(settings: Settings, actor: str | None = None) -> Iterator[Session]:
    """A session on the gateway database, migrated, acting as ``actor`` (default: the OS user at the console)."""
    engine = make_engine(settings.database_url("gateway"))
    upgrade_database(engine, "gateway", metadata)
    try:
        with Session(engine, expire_on_commit=False) as session:
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
