"""The rules' facts rebuilt from the streams (services/oversight/rebuild.py, part ``facts``): after a month of events
on a real nats-server that opens cases of nine rules, the officer's rebuild job and ``sifund oversight rebuild
--part facts`` (oversight stopped) give back every fact table row for row on its natural key — a row lost or altered
meanwhile comes back as the events said — together with the ledger, and leave every case as it was: no case opened or
reopened, no occurrence counted, states, history and follow-ups untouched. A stream that no longer starts at sequence
1 is refused before anything is touched. The live consumers act on cases again after the rebuild. The receipts of
the internal-control yearly reports (part ``receipts``) come back too: the first report of a year and area, one lost
and one altered meanwhile.

Real NATS and the real database of the backend under test (SQLite; PostgreSQL under infra/postgres/run-tests.sh)."""

import json
import os
import subprocess
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, func, select, update
from sqlmodel import Session

from services.contracts import benefits as ben
from services.contracts import collection as col
from services.contracts.accounts import InternalControlReportSubmitted
from services.kernel.errors import Conflict
from services.kernel.events import EventPayload
from services.kernel.models import InboxMessage
from services.oversight.cases import models as case_models
from services.oversight.cases.models import BenefitSignal, Case
from services.oversight.internal_control.models import ControlReportReceipt
from services.oversight.rebuild import part_tables, rebuild_oversight
from services.oversight.rules.models import RuleClaim, RulePaidPeriod
from tests.support.e2e import wait_for
from tests.support.launcher import free_port_base, sifund_command
from tests.support.oversight import publish
from tests.support.rules import assessed, decided, issued, life, person, settled, submitted

# Columns that say when this process applied an event, not what the event said: a replay sets them anew.
APPLIED_AT = {"received_at", "updated_at"}
CASE_TABLES = [model for model in vars(case_models).values()
               if hasattr(model, "__table__") and getattr(model, "__module__", "") == case_models.__name__
               and model is not BenefitSignal]
RULES_OPENED = {"S01", "S02", "S03", "S07", "S08", "S09", "S10", "S18", "S19"}


def registry() -> list[EventPayload]:
    return [person("p1", name="王芳"), person("p2", name="李强"), person("p3", name="赵敏"), person("m58"),
            life("p1", "deceased", death=date(2026, 3, 15)),
            life("p3", "imprisoned", source="manual", ref="x", prison_from=date(2026, 1, 5))]  # S19: no source


def month() -> list[EventPayload]:
    """Payments, claims and assessments of the month, after the registry: each line says what it opens."""
    return [
        settled("PEN_EMP", ("p1", 202604, 310000), ("p2", 202604, 280000), ("p3", 202604, 250000)),  # S01 p1, S02 p3
        settled("PEN_GOV", ("p2", 202604, 1000), file_id="f2"),  # S03: two pensions for one period
        ben.SurvivalCertified(person_id="p2", channel="face", certified_on=date(2026, 2, 1)),
        issued(("p1", "6222020000000001111", "王芳"), ("p2", "6222020000000002222", "李刚")),  # S07 holder
        submitted("c1", "m58", age=58),  # S08
        submitted("c2", "p2", kind="injury", back_months=40, monthly=None, one_off=1_000_000),  # S09
        decided("c2", "p2", "first_review", "rev.li"), decided("c2", "p2", "second_review", "rev.li"),  # S18
        assessed("a1", "emp1", 202605, ("p1", "PEN_EMP", 200000, 450000, "floor"),
                 ("p2", "PEN_EMP", 5000000, 3000000, "cap")),  # S10 clamps
        assessed("a3", "emp1", 202605, ("p2", "PEN_EMP", 5000000, 3000000, "cap"),
                 ("p1", "PEN_EMP", 460000, 460000, None), supersedes="a1"),
        col.AssessmentSuperseded(assessment_id="a1", superseded_by_id="a3", employer_id="emp1", period=202605,
                                 reason="更正"),
        ben.EntitlementSuspended(entitlement_id="ent-p1", person_id="p1", reason="deceased",
                                 since=date(2026, 3, 15)),
    ]


def report(year: int, region: str, number: str) -> InternalControlReportSubmitted:
    return InternalControlReportSubmitted(
        year=year, region=region, document_id=f"doc-{number}", document_number=number, document_sha256="b" * 64,
        submitted_by="auditor.qian", submitted_at=datetime(year, 12, 20, 2, tzinfo=timezone.utc), samples=12,
        sampled_items=240, nonconforming=1)


# Two areas' reports of 2025 and a second of the first area (accounts refuses it; oversight keeps the first only).
REPORTS = [report(2025, "150102", "社保内控字〔2025〕1号"), report(2025, "150103", "社保内控字〔2025〕2号"),
           report(2025, "150102", "社保内控字〔2025〕3号")]


def receipts(engine: Engine) -> dict[tuple[int, str], dict]:
    """The receipts on their natural key (year, area), without the id and the received-at a replay sets anew."""
    with Session(engine) as session:
        return {(r.year, r.region): {k: v for k, v in r.model_dump().items() if k not in APPLIED_AT | {"id"}}
                for r in session.execute(select(ControlReportReceipt)).scalars()}


def _rows(engine: Engine, models: list[type], *, leave_out: set[str] = frozenset()) -> dict[str, dict]:
    """Per table: natural (primary) key → the row's other columns, without ``leave_out``."""
    tables = {}
    with Session(engine) as session:
        for model in models:
            table = model.__table__
            keys = [c.name for c in table.primary_key.columns]
            columns = [c for c in table.columns if c.name not in leave_out]
            rows = session.execute(select(*columns)).mappings()
            tables[table.name] = {tuple(row[k] for k in keys): dict(row) for row in rows}
    return tables


def snapshot(engine: Engine) -> dict[str, dict]:
    """The facts and the ledger without the applied-at columns; the cases whole (nothing may move them)."""
    return {"facts": _rows(engine, part_tables(("facts",)), leave_out=APPLIED_AT),
            "ledger": _rows(engine, part_tables(("ledger",)), leave_out=APPLIED_AT),
            "cases": _rows(engine, CASE_TABLES)}


def lose_and_alter_facts(engine: Engine) -> None:
    """What a rebuild is for: a fact lost, another altered (a bad migration, a hand edit)."""
    with Session(engine) as session:
        session.execute(delete(RuleClaim).where(RuleClaim.claim_id == "c1"))
        session.execute(update(RulePaidPeriod).where(RulePaidPeriod.person_id == "p1").values(paid_fen=1))
        session.execute(delete(BenefitSignal))
        session.commit()


async def run_month(oversight, auth) -> int:  # noqa: ANN001
    """The month on the bus; waits until every event is applied and the rules' cases are open. Returns the count."""
    def applied() -> int:
        with Session(oversight.app.state.engine) as session:
            return session.execute(select(func.count()).select_from(InboxMessage)).scalar_one()

    async def registered() -> bool:
        return applied() == len(registry())

    async def opened() -> bool:
        with Session(oversight.app.state.engine) as session:
            rules = set(session.execute(select(Case.rule_id)).scalars())
        return applied() == len(registry()) + len(month()) and rules == RULES_OPENED

    await publish(oversight, *registry())
    await wait_for(registered, timeout=30)  # the names and deaths first: S07 and S01 read them
    await publish(oversight, *month())
    await wait_for(opened, timeout=60)
    await publish(oversight, *REPORTS)

    async def received() -> bool:
        return applied() == len(registry()) + len(month()) + len(REPORTS)

    await wait_for(received, timeout=30)
    officer = auth("oversight_officer", subject="officer.wang")
    case_id = (await oversight.get("/cases?rule_id=S01", headers=officer)).json()["items"][0]["id"]
    moved = await oversight.post(f"/cases/{case_id}/investigate", headers=officer, json={"note": "核查死亡信息"})
    assert moved.status_code == 200, moved.text
    return applied()


async def test_a_rebuild_gives_the_facts_back_and_leaves_the_cases_as_they_were(start_service, auth, settings,
                                                                                database_urls, tmp_path: Path):
    officer = auth("oversight_officer", subject="officer.wang")
    async with start_service("oversight") as oversight:
        engine = oversight.app.state.engine
        await run_month(oversight, auth)
        live = snapshot(engine)
        assert all(live["facts"].values()), {name: len(rows) for name, rows in live["facts"].items()}
        assert {case["rule_id"] for case in live["cases"]["oversight_case"].values()} == RULES_OPENED
        assert live["cases"]["case_occurrence"] and live["cases"]["case_history"]
        kept = receipts(engine)
        assert {key: r["document_number"] for key, r in kept.items()} == {
            (2025, "150102"): "社保内控字〔2025〕1号", (2025, "150103"): "社保内控字〔2025〕2号"}
        lose_and_alter_facts(engine)
        assert snapshot(engine)["facts"] != live["facts"]
        with Session(engine) as session:  # one receipt lost, the other altered
            session.execute(delete(ControlReportReceipt).where(ControlReportReceipt.region == "150103"))
            session.execute(update(ControlReportReceipt).values(document_number="X"))
            session.commit()

        job = (await oversight.post("/ledger/rebuild", headers=officer)).json()

        async def done() -> dict | None:
            body = (await oversight.get(f"/jobs/{job['id']}", headers=officer)).json()
            return body if body["status"] in ("succeeded", "failed") else None

        body = await wait_for(done, timeout=60)
        assert body["status"] == "succeeded", body
        assert body["result"]["parts"] == ["mirror", "ledger", "facts", "receipts"]
        assert body["result"]["streams"]["BENEFITS"]["applied"] == sum(
            1 for payload in month() if payload.event_type.startswith("benefits."))
        assert snapshot(engine) == live
        assert receipts(engine) == kept  # the first report of each area, as received

        # the live consumers act again: a payment for the month after the death opens its own case
        await publish(oversight, settled("PEN_EMP", ("p1", 202605, 310000), file_id="f5"))

        async def acted() -> bool:
            with Session(engine) as session:
                return session.get(RulePaidPeriod, ("p1", "PEN_EMP", 202605)) is not None and session.execute(
                    select(func.count()).select_from(Case).where(Case.fact_key == "S01:p1:202605")).scalar_one() == 1

        await wait_for(acted, timeout=30)
        live = snapshot(engine)

    # oversight stopped: the command line rebuilds the facts (and the ledger they read) alone
    lose_and_alter_facts(engine)
    result = _cli(settings, database_urls, tmp_path, "oversight", "rebuild", "--part", "facts")
    assert result["parts"] == ["ledger", "facts"] and "EXCHANGE" not in result["streams"]
    assert snapshot(engine) == live


def _cli(settings, database_urls: dict[str, str], tmp_path: Path, *arguments: str) -> dict:  # noqa: ANN001
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SIFUND_")}
    environment.update(SIFUND_DATA_DIR=str(tmp_path / "var"), SIFUND_PORT_BASE=str(free_port_base()),
                       SIFUND_NATS_URL=settings.nats_server_url,
                       SIFUND_OVERSIGHT_DATABASE_URL=database_urls["oversight"])
    done = subprocess.run([*sifund_command(), *arguments], env=environment, capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout.strip().splitlines()[-1])


async def test_a_truncated_stream_is_refused_and_nothing_is_touched(start_service, auth):
    async with start_service("oversight") as oversight:
        engine = oversight.app.state.engine
        await run_month(oversight, auth)
        lose_and_alter_facts(engine)  # left as they are: a refused rebuild repairs nothing either
        before = snapshot(engine)
        js = oversight.app.state.bus.js
        await js.purge_stream("BENEFITS", seq=2)  # sequence 1 gone: the facts of that settlement cannot be replayed
        with pytest.raises(Conflict) as refused:
            await rebuild_oversight(oversight.app, parts=("facts",))
        assert refused.value.code == "STREAM_TRUNCATED"
        assert snapshot(engine) == before

        # the paused consumers run again after the refusal
        await publish(oversight, settled("PEN_EMP", ("p2", 202605, 280000), file_id="f6"))

        async def applied() -> bool:
            with Session(engine) as session:
                return session.get(RulePaidPeriod, ("p2", "PEN_EMP", 202605)) is not None

        await wait_for(applied, timeout=30)
