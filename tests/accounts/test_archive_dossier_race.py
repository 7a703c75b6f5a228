"""Two transactions file the first acts of the same subject at once (PostgreSQL, READ COMMITTED: two accounts
replicas, or a request and a consumer): the second waits for the first to commit and files into the dossier it
opened — one dossier, both items, never a unique-key failure."""

import threading

import pytest
from sqlalchemy import select, text
from sqlmodel import Session

from services.accounts import models
from services.accounts.archives.filing import file_lines
from services.accounts.archives.models import Dossier, DossierItem
from services.kernel.archives import ArchiveItem
from services.kernel.db import make_engine
from services.kernel.migrations import upgrade_database
from tests.support.apps import POSTGRES_URL
from tests.support.pipeline import eventually

pytestmark = pytest.mark.skipif(not POSTGRES_URL, reason="concurrent writers of one PostgreSQL database "
                                                          "(SQLite serialises writers: make test-postgres)")

SUBJECT = "0b9e6c8e-5c2e-4a1e-9f57-3c1d2b7a8e01"


def filed(act_id: str) -> dict:
    return ArchiveItem(subject_type="person", subject_id=SUBJECT, item_type="enrolment", act_id=act_id,
                       title="参保登记", decision="登记", decided_by="clerk.li", registration_number="15010219650315916X",
                       subject_name="张建国", region="150102", occurred_at="2026-12-07T01:00:00+00:00").as_line("accounts")


def waiting_on_an_advisory_lock(engine) -> bool:  # noqa: ANN001
    with engine.connect() as connection:
        return bool(connection.execute(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                            "AND wait_event = 'advisory' AND datname = current_database()")).scalar())


async def test_the_second_filer_of_a_new_subject_waits_and_files_into_the_same_dossier(database_urls):
    engine = make_engine(database_urls["accounts"])
    upgrade_database(engine, "accounts", models.metadata)
    first_filed, release, errors = threading.Event(), threading.Event(), []

    def first() -> None:
        with Session(engine) as session:
            file_lines(session, [filed("enrolment-1")])
            first_filed.set()
            release.wait(60)
            session.commit()

    def second() -> None:
        try:
            with Session(engine) as session:
                file_lines(session, [filed("enrolment-2")])
                session.commit()
        except Exception as error:  # noqa: BLE001 - reported by the test
            errors.append(error)

    threads = [threading.Thread(target=first)]
    threads[0].start()
    assert first_filed.wait(60)
    threads.append(threading.Thread(target=second))
    threads[1].start()
    await eventually(lambda: waiting_on_an_advisory_lock(engine), timeout=60)  # the second waits for the first
    release.set()
    for thread in threads:
        thread.join(60)
    assert errors == []
    with Session(engine) as session:
        dossiers = list(session.execute(select(Dossier.id, Dossier.item_count)))
        items = session.execute(select(DossierItem.act_id).order_by(DossierItem.act_id)).scalars().all()
    assert [count for _, count in dossiers] == [2] and items == ["enrolment-1", "enrolment-2"]
    engine.dispose()
