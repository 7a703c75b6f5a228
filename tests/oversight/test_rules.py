"""Suspicion rules S01–S20 (OVERSIGHT.md 疑点规则): each rule with a planted case and a clean near-miss,
the same fact found twice (redelivery, event then sweep, two sweeps) opening one case, facts arriving in either
order, the sweep's set-based checks, the catalogue and the sweep endpoint (gateway and accounts pulled with the
officer's token), and the events on a real nats-server reaching the rules through the merged consumers.

The handler tests feed envelopes through the oversight consumers exactly as merged for the running service (mirror,
ledger, cases, rules, in that order, one transaction per event)."""

import json
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from services.contracts import accounts as acc
from services.contracts import benefits as ben
from services.contracts import collection as col
from services.kernel import context
from services.kernel.clock import china_today
from services.kernel.db import make_engine
from services.kernel.events import EventActor, EventPayload, build_envelope
from services.kernel.migrations import pending_schema_changes, upgrade_database
from services.kernel.periods import add_months, period_of
from services.kernel.service_app import merge_consumer_specs
from services.oversight import models
from services.oversight.app import SPEC
from services.oversight.cases.models import Case, CaseOccurrence
from services.oversight.rules.common import period_start
from services.oversight.rules.funds import FUND_RULES
from services.oversight.rules.registry import RULES, Finding, judgeable
from services.oversight.rules.sweep import SWEPT, SweepInputs, run_sweep
from tests.support.e2e import wait_for
from tests.support.oversight import allocation, approved, receipt, registered, remitted, transaction
from tests.support.oversight import publish as publish_on_bus
from tests.support.rules import (
    REGION, T0, assessed, decided, died, enrolled, granted, issued, life, person, settled, submitted,
)

HANDLERS = {t: h for spec in merge_consumer_specs(SPEC.consumers) for t, h in spec.handlers.items()}
SYSTEM = context.Actor(id="system:oversight", role="system")


@pytest.fixture
def engine(database_urls):
    engine = make_engine(database_urls["oversight"])
    upgrade_database(engine, "oversight", models.metadata)
    yield engine
    engine.dispose()


class Feed:
    """Applies payloads through the merged oversight handlers, each event in its own transaction."""

    def __init__(self, engine):  # noqa: ANN001
        self.engine = engine

    def __call__(self, *payloads: EventPayload, at: datetime = T0, actor: str = "system:test",
                 role: str | None = "system") -> list[str]:
        ids = []
        for payload in payloads:
            envelope = build_envelope(payload, source=payload.event_type.split(".", 1)[0], subject="x",
                                      actor=EventActor(id=actor, role=role), correlation_id=None,
                                      causation_id=None).model_copy(update={"time": at})
            self.apply(envelope)
            ids.append(envelope.id)
        return ids

    def apply(self, envelope) -> None:  # noqa: ANN001
        with context.trace(actor=SYSTEM, causation_id=envelope.id), Session(self.engine) as session:
            HANDLERS[envelope.type](session, envelope)
            session.commit()

    def cases(self, rule_id: str | None = None) -> list[Case]:
        with Session(self.engine) as session:
            query = select(Case).order_by(Case.fact_key)
            if rule_id:
                query = query.where(Case.rule_id == rule_id)
            return list(session.execute(query).scalars())

    def keys(self, rule_id: str) -> list[str]:
        return [c.fact_key for c in self.cases(rule_id)]

    def sweep(self, as_of: date, rules: list[str] | None = None, **inputs):  # noqa: ANN003, ANN201
        run = run_sweep(self.engine, as_of=as_of, inputs=SweepInputs(**inputs), rules=rules)
        return json.loads(run.summary), run


@pytest.fixture
def feed(engine) -> Feed:  # noqa: ANN001
    return Feed(engine)


def details(case: Case) -> dict:
    return json.loads(case.details)


# -- S01 -------------------------------------------------------------------------------------------------------------


def test_s01_paid_after_the_death_month_but_not_for_it(feed):
    feed(person("p1"), person("p2"))
    feed(life("p1", "deceased", death=date(2026, 3, 15)), at=T0)
    feed(settled("PEN_EMP", ("p1", 202603, 310000), ("p2", 202604, 280000), file_id="f3"))  # death month: payable
    assert feed.cases("S01") == []
    feed(settled("PEN_EMP", ("p1", 202604, 310000), file_id="f4"))  # the month after: not
    [case] = feed.cases("S01")
    assert case.fact_key == "S01:p1:202604" and case.person_id == "p1" and case.severity == "high"
    assert case.seed_clause == "001 第二十七条" and case.amount_fen == 310000 and case.region == REGION
    assert case.suggested_class == 4 and details(case)["death_date"] == "2026-03-15"
    # the sweep finds the same fact: an occurrence, not a second case
    summary, _ = feed.sweep(date(2026, 7, 1), rules=["S01"])
    assert summary["rules"]["S01"] == {**summary["rules"]["S01"], "found": 1, "created": 0, "existing": 1}
    assert [c.occurrences for c in feed.cases("S01")] == [2]


def test_s01_a_death_reported_after_the_payment_and_by_partner_data_alone(feed):
    feed(person("p1"), person("p2"))
    feed(settled("PEN_EMP", ("p1", 202605, 300000), ("p2", 202605, 300000)))
    assert feed.cases("S01") == []
    feed(life("p1", "deceased", death=date(2026, 4, 2)))  # the registry learns of the death later
    assert feed.keys("S01") == ["S01:p1:202605"]
    feed(died("p2", date(2026, 4, 30)))  # only the partner's record (registry not updated): still a death
    assert feed.keys("S01") == ["S01:p1:202605", "S01:p2:202605"]
    assert details(feed.cases("S01")[1])["death_reported_by"] == ["partner"]


def test_s01_a_death_corrected_back_to_alive_by_an_approved_correction_is_not_a_death(feed):
    feed(person("p1"))
    feed(died("p1", date(2026, 3, 1)))
    feed(life("p1", "deceased", death=date(2026, 3, 1)), at=T0)
    feed(life("p1", "alive", source="correction", ref="corr-1", previous="deceased"), at=T0 + timedelta(hours=1))
    feed(settled("PEN_EMP", ("p1", 202605, 300000)))
    assert feed.cases("S01") == []


# -- S02 -------------------------------------------------------------------------------------------------------------


def test_s02_paid_inside_the_imprisonment_window_only(feed):
    feed(person("p1"))
    feed(life("p1", "imprisoned", prison_from=date(2026, 2, 10)), at=T0)
    feed(life("p1", "alive", prison_from=date(2026, 2, 10), prison_until=date(2026, 4, 20), previous="imprisoned"),
         at=T0 + timedelta(hours=1))
    feed(settled("PEN_EMP", ("p1", 202602, 1), ("p1", 202603, 2), ("p1", 202604, 3), ("p1", 202605, 4)))
    # the month it began is payable, the months after up to the release month are not, after release payable
    assert feed.keys("S02") == ["S02:p1:202603", "S02:p1:202604"]
    assert details(feed.cases("S02")[0])["imprisoned_until"] == "2026-04-20"


def test_s02_an_open_imprisonment_from_the_partner_record(feed):
    feed(person("p1"))
    feed(settled("PEN_EMP", ("p1", 202606, 300000)))
    feed(acc.PersonImprisoned(person_id="p1", citizen_id="150102196005010001", imprisoned_from=date(2026, 5, 3),
                              source="justice", record_id="sf-1"))
    assert feed.keys("S02") == ["S02:p1:202606"]


# -- S03 -------------------------------------------------------------------------------------------------------------


def test_s03_reported_overlap_active_in_two_schemes_and_two_pensions_for_one_period(feed):
    feed(person("p1"), person("p2"), person("p3"), person("p4"))
    duplicate = acc.DuplicateEnrolmentFound(person_id="p1", citizen_id="150102196005010001",
                                            funds=["PEN_RES", "PEN_EMP"], overlap_from=201501, overlap_to=201812)
    feed(duplicate)
    feed(duplicate)  # reported again: the same case
    assert feed.keys("S03") == ["S03:reported:p1:PEN_EMP,PEN_RES:201501"]
    # p2 active in two schemes: a case; p3 active in one, the other stopped: none
    feed(enrolled("e2a", "p2", "PEN_EMP", 202001), enrolled("e2b", "p2", "PEN_RES", 202301, employer=None))
    feed(enrolled("e3b", "p3", "PEN_RES", 201501, employer=None))
    feed(acc.EnrolmentStopped(enrolment_id="e3b", person_id="p3", fund="PEN_RES", end_period=201912, reason="转入"),
         at=T0 + timedelta(hours=1))
    feed(enrolled("e3a", "p3", "PEN_EMP", 202001), at=T0 + timedelta(hours=2))
    assert feed.keys("S03") == ["S03:enrolled:p2:PEN_EMP+PEN_RES", "S03:reported:p1:PEN_EMP,PEN_RES:201501"]
    # p4 paid by two pension funds for 202605; p3 by two funds in different months: none
    feed(settled("PEN_EMP", ("p4", 202605, 300000), ("p3", 202604, 1)), settled("PEN_RES", ("p4", 202605, 20000),
                                                                                 ("p3", 202605, 1), file_id="f2"))
    drawing = [c for c in feed.cases("S03") if "drawing" in c.fact_key]
    assert [c.fact_key for c in drawing] == ["S03:drawing:p4:PEN_EMP+PEN_RES"] and drawing[0].severity == "high"
    assert details(drawing[0])["periods"] == [202605]
    summary, _ = feed.sweep(date(2026, 7, 1), rules=["S03"])
    assert summary["rules"]["S03"]["created"] == 0 and summary["rules"]["S03"]["found"] == 2


# -- S04 -------------------------------------------------------------------------------------------------------------


def test_s04_paid_for_a_month_beginning_after_certification_expired(feed):
    feed(person("p1"), person("p2"))
    feed(ben.SurvivalCertified(person_id="p1", channel="app", certified_on=date(2025, 3, 15)),
         ben.SurvivalCertified(person_id="p2", channel="app", certified_on=date(2025, 3, 15)))
    feed(settled("PEN_EMP", ("p1", 202603, 300000), ("p2", 202603, 300000)))  # 202603 began before 2026-03-15
    assert feed.cases("S04") == []
    feed(settled("PEN_EMP", ("p1", 202604, 300000), file_id="f2"))
    [case] = feed.cases("S04")
    assert case.fact_key == "S04:p1:2025-03-15"
    assert details(case)["first_overdue_period"] == 202604 and details(case)["last_paid_period"] == 202604
    feed(ben.SurvivalCertified(person_id="p2", channel="face", certified_on=date(2026, 3, 20)))
    feed(settled("PEN_EMP", ("p2", 202604, 300000), file_id="f3"))  # certified again in time: fine
    summary, _ = feed.sweep(date(2026, 7, 1), rules=["S04"])
    assert summary["rules"]["S04"]["found"] == 1 and summary["rules"]["S04"]["created"] == 0


def test_s04_never_certified_counts_from_the_first_paid_month(feed):
    feed(settled("PEN_EMP", *[("p9", p, 1) for p in (202501, 202502, 202601)]))
    assert feed.cases("S04") == []
    feed(settled("PEN_EMP", ("p9", 202602, 1), file_id="f2"))
    assert feed.keys("S04") == ["S04:p9:never"]


# -- S05 -------------------------------------------------------------------------------------------------------------


def test_s05_unemployment_paid_while_an_employer_enrolment_covers_the_month(feed):
    feed(person("p1"), person("p2"))
    feed(enrolled("e1", "p1", "PEN_EMP", 202601, employer="emp9"))
    feed(enrolled("e2", "p2", "UNEMP", 202401, employer="emp9"),
         acc.EnrolmentStopped(enrolment_id="e2", person_id="p2", fund="UNEMP", end_period=202604, reason="离职"))
    feed(settled("UNEMP", ("p1", 202605, 180000), ("p2", 202605, 180000)))
    [case] = feed.cases("S05")
    assert case.fact_key == "S05:p1:202605" and case.employer_id == "emp9"
    # an employment enrolment reported after the payment (an import): the sweep finds it
    feed(acc.EnrolmentsImported(import_job_id="imp1", enrolments=[acc.ImportedEnrolment(
        enrolment_id="e3", person_id="p2", fund="PEN_EMP", employer_id="emp7", start_period=202605,
        end_period=None, status="active")]))
    summary, _ = feed.sweep(date(2026, 7, 1), rules=["S05"])
    assert summary["rules"]["S05"]["created"] == 1
    assert feed.keys("S05") == ["S05:p1:202605", "S05:p2:202605"]


# -- S06 -------------------------------------------------------------------------------------------------------------


def test_s06_large_payment_without_the_large_amount_review(feed):
    feed(person("p1"), person("p2"), person("p3"))
    levels = ["first_review", "second_review", "approval"]
    feed(submitted("c1", "p1", monthly=6_000_000), submitted("c2", "p2", monthly=6_000_000),
         submitted("c3", "p3", monthly=4_000_000))
    feed(granted("c1", "p1", 6_000_000, levels))  # above 50 000 yuan, no 大额复核
    feed(granted("c2", "p2", 6_000_000, [*levels, "large_amount_review"]))  # reviewed
    feed(granted("c3", "p3", 4_000_000, levels))  # below the threshold
    [case] = feed.cases("S06")
    assert case.fact_key == "S06:c1" and case.amount_fen == 6_000_000 and case.subject_type == "claim"
    # the approving decision of the same claim reports the same fact
    feed(decided("c1", "p1", "approval", "u3", status="approved", role="agency_approver"))
    assert [c.occurrences for c in feed.cases("S06")] == [2]


def test_s06_a_claim_benefits_flagged_large_approved_without_the_review_level(feed):
    feed(person("p1"))
    feed(submitted("c1", "p1", monthly=100_000, large=True))
    feed(decided("c1", "p1", "first_review", "u1"), decided("c1", "p1", "second_review", "u2"))
    assert feed.cases("S06") == []
    feed(decided("c1", "p1", "approval", "u3", status="approved", role="agency_approver"))
    assert feed.keys("S06") == ["S06:c1"]


# -- S07 -------------------------------------------------------------------------------------------------------------


def test_s07_holder_not_the_beneficiary_and_one_account_for_several_persons(feed):
    feed(person("p1", name="王芳"), person("p2", name="李强"), person("p3", name="赵敏"), person("p4", name="陈静"))
    feed(issued(("p1", "6222020000000001111", "王 芳"),  # the same name, spaced: fine
                ("p2", "6222020000000002222", "李刚"),  # another person's name
                ("p3", "6222020000000003333", "赵敏"), ("p4", "6222020000000003333", "陈静")))  # one account, two
    assert feed.keys("S07") == ["S07:holder:p2:ba-p2-2222",
                                "S07:shared:" + __import__("hashlib").sha256(b"6222020000000003333").hexdigest()]
    shared = feed.cases("S07")[1]
    assert [p["person_id"] for p in details(shared)["persons"]] == ["p3", "p4"]
    assert details(shared)["account_tail"] == "3333" and "6222020000000003333" not in shared.details
    feed(issued(("p1", "6222020000000001111", "王芳"), file_id="bf2"))  # the same person next month: fine
    assert len(feed.cases("S07")) == 2


# -- S08, S09 --------------------------------------------------------------------------------------------------------


def test_s08_retirement_below_the_statutory_age(feed):
    # 001 第二十二条
    feed(person("m58"), person("m60"), person("f48", sex="F"), person("f52", sex="F"))
    feed(submitted("c1", "m58", age=58), submitted("c2", "m60", age=60), submitted("c3", "f48", age=48),
         submitted("c4", "f52", age=52), submitted("c5", "m58", age=55, status="blocked"),
         submitted("c6", "m58", age=40, kind="unemployment"))
    assert feed.keys("S08") == ["S08:c1", "S08:c3"]  # a woman of 52 may be a worker (50): not judged
    assert details(feed.cases("S08")[0])["statutory_age"] == 60


def test_s09_back_payment_over_many_months_or_a_large_amount(feed):
    # 001 第二十一条
    feed(person("p1"))
    feed(submitted("c1", "p1", kind="injury", back_months=40, monthly=None, one_off=1_000_000),
         submitted("c2", "p1", kind="injury", back_months=12, monthly=None, one_off=1_000_000),
         submitted("c3", "p1", kind="injury", back_months=6, monthly=None, one_off=8_000_000),
         submitted("c4", "p1", kind="injury", back_months=None, monthly=None, one_off=9_000_000))
    assert feed.keys("S09") == ["S09:c1", "S09:c3"]


# -- S10 -------------------------------------------------------------------------------------------------------------


def test_s10_clamped_bases_one_case_per_employer_and_period(feed):
    # 003 三.6
    feed(assessed("a1", "emp1", 202605, ("p1", "PEN_EMP", 200000, 450000, "floor"),
                  ("p2", "PEN_EMP", 5000000, 3000000, "cap"), ("p3", "PEN_EMP", 600000, 600000, None)),
         assessed("a2", "emp2", 202605, ("p4", "PEN_EMP", 600000, 600000, None)))
    [case] = feed.cases("S10")
    assert case.fact_key == "S10:clamp:emp1:202605" and case.employer_id == "emp1"
    assert (details(case)["floor_lines"], details(case)["cap_lines"]) == (1, 1)
    # a correction supersedes it with the floor line fixed: the same case, updated counts
    feed(assessed("a3", "emp1", 202605, ("p2", "PEN_EMP", 5000000, 3000000, "cap"),
                  ("p1", "PEN_EMP", 460000, 460000, None), supersedes="a1"),
         col.AssessmentSuperseded(assessment_id="a1", superseded_by_id="a3", employer_id="emp1", period=202605,
                                  reason="更正"))
    [case] = feed.cases("S10")  # the new assessment, then the supersession: reported again with what remains
    assert (details(case)["floor_lines"], details(case)["cap_lines"]) == (0, 1)


def test_s10_a_sharp_base_rise_before_retirement(feed):
    # 003 三.6
    feed(person("p1"), person("p2"))
    for n, period in enumerate([p for y in range(2022, 2027) for p in range(y * 100 + 1, y * 100 + 13)
                                if 202206 <= p <= 202605]):
        recent = period >= 202506
        feed(assessed(f"x{n}", "emp1", period, ("p1", "PEN_EMP", None, 900000 if recent else 500000, None),
                      ("p2", "PEN_EMP", None, 600000 if recent else 500000, None)))
    feed(submitted("c1", "p1", effective=202606), submitted("c2", "p2", effective=202606))
    [case] = feed.cases("S10")
    assert case.fact_key == "S10:rise:c1" and details(case)["ratio_percent"] == 180


# -- S11 -------------------------------------------------------------------------------------------------------------


def test_s11_business_not_registered_as_employer_after_30_days(feed):
    # 003 三.5: new businesses reported by market regulation must register.
    def business(uscc: str, on: date, employer: str | None = None) -> acc.BusinessRegistered:
        return acc.BusinessRegistered(uscc=uscc, name=f"公司{uscc[-2:]}", registered_on=on, employer_id=employer,
                                      source="market", record_id=f"r{uscc}")

    feed(business("91150102MA0000001A", date(2026, 5, 31)),  # 31 days before as_of
         business("91150102MA0000002B", date(2026, 6, 1)),  # 30 days: still in time
         business("91150102MA0000003C", date(2026, 4, 1)),  # registered as an employer since
         business("91150102MA0000004D", date(2026, 4, 1), employer="emp4"))
    feed(acc.EmployerRegistered(employer_id="emp3", uscc="91150102MA0000003C", name="公司3C", region=REGION,
                                registered_at=T0))
    summary, _ = feed.sweep(date(2026, 7, 1), rules=["S11"])
    assert feed.keys("S11") == ["S11:91150102MA0000001A"]
    assert feed.cases("S11")[0].suggested_class == 3 and summary["rules"]["S11"]["created"] == 1
    feed.sweep(date(2026, 7, 2), rules=["S11"])  # the next day: the same fact only counted; the other now late
    assert feed.keys("S11") == ["S11:91150102MA0000001A", "S11:91150102MA0000002B"]
    case = feed.cases("S11")[0]
    with Session(feed.engine) as session:
        kept = session.execute(select(func.count()).select_from(CaseOccurrence)
                               .where(CaseOccurrence.case_id == case.id)).scalar_one()
    assert case.occurrences == 2 and kept == 1


# -- S12–S16 ---------------------------------------------------------------------------------------------------------


def test_s12_to_s16_from_the_reconciliation_cells(feed):
    pen = "PEN_EMP"
    feed(registered("income-PEN", "income", pen), registered("income-UN", "income", "UNEMP"),
         # R3: one remittance received late (S12), one in time (no case), one still within its deadline (none)
         remitted("r-late", pen, 202604, 1000, date(2026, 5, 6)), receipt("t1", "r-late", pen, 202604, 1000,
                                                                          date(2026, 5, 29)),
         remitted("r-ok", pen, 202604, 500, date(2026, 5, 6)), receipt("t2", "r-ok", pen, 202604, 500,
                                                                       date(2026, 5, 8)),
         # R4: an income account left with a balance at the month's end (S13); the other cleared (none)
         transaction("i1", account="income-PEN", kind="income", fund=pen, direction="in", amount=700,
                     counterparty="payer", purpose="receipt", on=date(2026, 5, 10)),
         transaction("i2", account="income-UN", kind="income", fund="UNEMP", direction="in", amount=300,
                     counterparty="payer", purpose="receipt", on=date(2026, 5, 10)),
         transaction("i3", account="income-UN", kind="income", fund="UNEMP", direction="out", amount=300,
                     counterparty="special", purpose="transfer", on=date(2026, 5, 20), counterparty_fund="UNEMP"),
         # R6: a cross-fund movement (S14) and an income account paying someone else (S16)
         transaction("x1", account="special-PEN", kind="special", fund=pen, direction="out", amount=500,
                     counterparty="expenditure", purpose="allocation", on=date(2026, 5, 9), counterparty_fund="UNEMP",
                     status="flagged", violation="U7（000 二(一)…）不同险种基金之间不得划转资金"),
         transaction("x2", account="income-PEN", kind="income", fund=pen, direction="out", amount=100,
                     counterparty="other", purpose="payment", on=date(2026, 5, 11), status="flagged",
                     violation="U1（000 二(四)1…）收入户只能向本险种财政专户划转资金"),
         # R1 (S15): tax collected for 202605, nothing posted or received
         col.PaymentsCollected(batch_id="b1", part=1, parts=1, lines=[col.CollectedLine(
             payment_id="pay1", tax_line_id="t-1", payer_uscc=None, employer_id="emp1", person_id="p1",
             citizen_id=None, fund=pen, period=202605, employer_fen=1600, individual_fen=800, late_fee_fen=0,
             method="bank_transfer", voucher_no="v1", paid_date=date(2026, 5, 20), assessment_line_id=None,
             match_status="matched")]))
    summary, run = feed.sweep(date(2026, 6, 15), months=[202605])
    assert run.status == "partial"  # S18/S20 skipped: no tenure report given
    assert summary["rules"]["S20"]["status"] == "skipped"
    assert feed.keys("S12") == ["S12:R3:remittance_id=r-late"]
    assert feed.keys("S13") == ["S13:R4:account_id=income-PEN|month=202605"]
    assert feed.keys("S14") == ["S14:R6:transaction_id=x1"]
    assert feed.keys("S16") == ["S16:R6:transaction_id=x2"]
    s15 = feed.keys("S15")
    assert "S15:R1:fund=PEN_EMP|period=202605" in s15 and "S15:R2:employer_id=emp1|fund=PEN_EMP|period=202605" in s15
    assert not any("r-ok" in k for k in s15)
    assert feed.cases("S12")[0].seed_clause == "000 二(二)" and details(feed.cases("S12")[0])["status"] == "late"
    again, _ = feed.sweep(date(2026, 6, 15), months=[202605])
    assert all(v.get("created", 0) == 0 for v in again["rules"].values())


def _month_end_world(feed: Feed, months: tuple[int, int]) -> None:
    """In each month: an income account left with a balance (R4 → S13) and tax collected that nobody posted or
    received (R1/R2 → S15)."""
    feed(registered("income-PEN", "income", "PEN_EMP"))
    for month in months:
        first = period_start(month)
        feed(transaction(f"i{month}", account="income-PEN", kind="income", fund="PEN_EMP", direction="in",
                         amount=700, counterparty="payer", purpose="receipt", on=first),
             col.PaymentsCollected(batch_id=f"b{month}", part=1, parts=1, lines=[col.CollectedLine(
                 payment_id=f"pay{month}", tax_line_id=f"t-{month}", payer_uscc=None, employer_id="emp1",
                 person_id="p1", citizen_id=None, fund="PEN_EMP", period=month, employer_fen=1600,
                 individual_fen=800, late_fee_fen=0, method="bank_transfer", voucher_no=f"v{month}", paid_date=first,
                 assessment_line_id=None, match_status="matched")]))


def test_month_end_rules_never_judge_a_month_that_has_not_ended(feed):
    """A sweep run on 2026-12-05 that includes 2026-12 opens no S13 case for December: S13 and
    S15 are month-end rules: the running month is skipped (and said so), the month before is judged; S12/S14/S16
    still look at the running month. A sweep dated after today judges month ends as of today."""
    today = china_today()
    current = period_of(today)
    previous = add_months(current, -1)
    _month_end_world(feed, (previous, current))
    assert RULES["S13"].month_end and RULES["S15"].month_end and not RULES["S12"].month_end
    summary, run = feed.sweep(today, rules=list(FUND_RULES), months=[previous, current])
    assert run.status == "done", summary
    assert feed.keys("S13") == [f"S13:R4:account_id=income-PEN|month={previous}"]
    assert all(str(current) not in key for key in feed.keys("S15")) and feed.keys("S15"), feed.keys("S15")
    for rule in ("S13", "S15"):
        assert summary["rules"][rule]["months_not_ended"] == [current], summary["rules"][rule]
    assert "months_not_ended" not in summary["rules"]["S12"]
    # as_of in the next month does not make the running month over before it is
    later, _ = feed.sweep(period_start(add_months(current, 1)), rules=["S13", "S15"], months=[current])
    assert later["rules"]["S13"] == {**later["rules"]["S13"], "found": 0, "months_not_ended": [current]}
    assert all(str(current) not in key for key in feed.keys("S13") + feed.keys("S15"))


@pytest.mark.unit
def test_a_month_end_finding_must_name_its_month():
    finding = Finding(key="k", subject_type="fund", subject_id="PEN_EMP", title="t", details={})
    with pytest.raises(ValueError, match="name no month"):
        judgeable("S13", [finding], date(2026, 12, 5))
    assert judgeable("S12", [finding], date(2026, 12, 5)) == [finding]
    december = Finding(key="k", subject_type="fund", subject_id="PEN_EMP", title="t", details={}, month=202612)
    assert judgeable("S13", [december], date(2026, 12, 31)) == []
    assert judgeable("S13", [december], date(2027, 1, 1)) == ([december] if china_today() >= date(2027, 1, 1)
                                                               else [])


# -- S17 -------------------------------------------------------------------------------------------------------------


def test_s17_a_line_refused_for_its_payment_method(feed):
    feed(acc.EmployerRegistered(employer_id="emp1", uscc="91150102MA0000001A", name="某公司", region=REGION,
                                registered_at=T0))
    feed(col.PaymentsRejected(batch_id="b1", lines=[
        col.RejectedLine(tax_line_id="t-9", line_no=3, code="REFUSED_PAYMENT_METHOD", message="现金缴费不予受理",
                         method="cash", payer_uscc="91150102MA0000001A", fund="PEN_EMP", period=202605,
                         amount_fen=240000),
        col.RejectedLine(tax_line_id="t-10", line_no=4, code="UNKNOWN_PERSON", message="查无此人",
                         method="bank_transfer", payer_uscc="91150102MA0000001A")]))
    [case] = feed.cases("S17")
    assert case.fact_key == "S17:t-9" and case.employer_id == "emp1" and case.region == REGION
    assert details(case)["method"] == "cash"
    # a cash line collection accepted after all (the TAX leg): high; an ss-card line beside it: fine
    feed(col.PaymentsCollected(batch_id="b2", part=1, parts=1, lines=[col.CollectedLine(
        payment_id=f"pay{n}", tax_line_id=f"t-2{n}", payer_uscc="91150102MA0000001A", employer_id="emp1",
        person_id="p1", citizen_id=None, fund="PEN_EMP", period=202605, employer_fen=1600, individual_fen=800,
        late_fee_fen=0, method=method, voucher_no=f"v{n}", paid_date=date(2026, 6, 3), assessment_line_id=None,
        match_status="matched") for n, method in enumerate(("cash", "ss_card"))]))
    assert feed.keys("S17") == ["S17:collected:pay0", "S17:t-9"]
    assert feed.cases("S17")[0].severity == "high" and feed.cases("S17")[0].amount_fen == 2400


# -- S18 -------------------------------------------------------------------------------------------------------------


def test_s18_one_user_at_two_levels_or_deciding_their_own_claim(feed):
    feed(person("p1"))
    feed(submitted("c1", "p1"), submitted("c2", "p1"), submitted("c3", "p1"), actor="clerk.zhang",
         role="agency_clerk")
    # the services refuse these; the events are injected to show oversight sees them anyway
    feed(decided("c1", "p1", "first_review", "rev.li"), decided("c1", "p1", "second_review", "rev.li"))
    feed(decided("c2", "p1", "first_review", "clerk.zhang"))
    feed(decided("c3", "p1", "first_review", "rev.li"), decided("c3", "p1", "second_review", "rev.wang"))
    assert feed.keys("S18") == ["S18:claim:c1:rev.li", "S18:claim:c2:clerk.zhang"]
    assert details(feed.cases("S18")[0])["steps"] == ["first_review", "second_review"]
    assert details(feed.cases("S18")[1])["submitted_by_same_user"] is True


def test_s18_incompatible_roles_and_s20_tenure_from_the_gateway_report(feed):
    # 004 第3项、第22项；001 第十六条
    granted_at = lambda years, days=0: (datetime(2026, 7, 1, tzinfo=UTC)  # noqa: E731
                                        - timedelta(days=round(365.25 * years) + days)).isoformat()
    rows = [
        {"username": "acc.liu", "display_name": "刘", "unit": "财务科", "region": REGION, "role": "accountant",
         "granted_at": "2021-06-30T09:00:00+00:00", "tenure_days": 1827},  # 5 years and a day: S20
        {"username": "acc.liu", "display_name": "刘", "unit": "财务科", "region": REGION, "role": "cashier",
         "granted_at": granted_at(2), "tenure_days": 730},  # accountant + cashier: S18
        {"username": "rev.ma", "display_name": "马", "unit": "待遇科", "region": REGION, "role": "agency_reviewer",
         "granted_at": "2021-07-01T09:00:00+00:00", "tenure_days": 1826},  # five years to the day: not more
    ]
    summary, run = feed.sweep(date(2026, 7, 1), rules=["S18", "S20"], tenure_rows=rows)
    assert run.status == "done"
    assert feed.keys("S20") == ["S20:acc.liu:accountant:2021-06-30"]
    assert feed.keys("S18") == ["S18:roles:acc.liu:ACCOUNTANT_CASHIER"]
    assert feed.cases("S20")[0].unit == "财务科" and summary["rules"]["S20"]["created"] == 1


# -- S19 -------------------------------------------------------------------------------------------------------------


def test_s19_identity_fields_changed_and_a_life_status_from_an_unknown_source(feed):
    # 004 第24项: no change without an approval.
    feed(person("p1"), person("p2"))
    feed(acc.PersonUpdated(person_id="p1", version=2, changes={"birth_date": ["1960-05-01", "1966-05-01"]}),
         acc.PersonUpdated(person_id="p2", version=2, changes={"household_type": ["urban", "rural"]}),
         actor="dba", role=None)
    [case] = feed.cases("S19")
    assert case.fact_key == "S19:person:p1:v2" and details(case)["fields"] == ["birth_date"]
    assert details(case)["actor"] == "dba"
    [event_id] = feed(life("p2", "deceased", death=date(2026, 5, 1), source="manual", ref="x"))
    assert f"S19:life:{event_id}" in feed.keys("S19")


def test_s19_exchange_changes_need_a_partner_record_and_corrections_an_approval(feed):
    # 004 第24项: no change without an approval.
    for pid in ("p1", "p2", "p3", "p4", "p5"):
        feed(person(pid))
    feed(died("p1", date(2026, 5, 1)))
    [backed] = feed(life("p1", "deceased", death=date(2026, 5, 1), ref="row-1"))
    [unbacked] = feed(life("p2", "deceased", death=date(2026, 5, 2), ref="row-2"))
    [late] = feed(life("p3", "deceased", death=date(2026, 5, 3), ref="row-3"), at=datetime(2026, 6, 30, 12,
                                                                                            tzinfo=UTC))
    [approved] = feed(life("p4", "alive", source="correction", ref="corr-ok", previous="deceased"))
    [self_approved] = feed(life("p5", "alive", source="correction", ref="corr-self", previous="deceased"))
    entries = [
        {"seq": 10, "action": "life_status_correction.request", "entity_type": "life_status_correction",
         "entity_id": "corr-ok", "actor_id": "clerk.a", "at": "2026-05-30T01:00:00"},
        {"seq": 11, "action": "life_status_correction.approve", "entity_type": "life_status_correction",
         "entity_id": "corr-ok", "actor_id": "rev.b", "at": "2026-05-30T02:00:00"},
        {"seq": 12, "action": "life_status_correction.request", "entity_type": "life_status_correction",
         "entity_id": "corr-self", "actor_id": "clerk.a", "at": "2026-05-30T03:00:00"},
        {"seq": 13, "action": "life_status_correction.approve", "entity_type": "life_status_correction",
         "entity_id": "corr-self", "actor_id": "clerk.a", "at": "2026-05-30T04:00:00"},
    ]
    summary, _ = feed.sweep(date(2026, 7, 1), rules=["S19"])  # no audit feed: corrections not judged
    assert feed.keys("S19") == [f"S19:life:{unbacked}"] and "not read" in summary["inputs"]["corrections"]
    summary, _ = feed.sweep(date(2026, 7, 1), rules=["S19"], correction_entries=entries)
    assert sorted(feed.keys("S19")) == sorted([f"S19:life:{unbacked}", f"S19:life:{self_approved}"])
    assert {backed, late, approved}.isdisjoint(k.split(":")[-1] for k in feed.keys("S19"))  # late: within grace
    from services.oversight.rules.registry_data import correction_cursor  # noqa: PLC0415
    with Session(feed.engine) as session:
        assert correction_cursor(session) == 13


# -- the sweep, the catalogue, the endpoint --------------------------------------------------------------------------


@pytest.mark.unit
def test_every_rule_is_in_the_catalogue_with_a_clause_and_a_mode():
    assert sorted(RULES) == [f"S{n:02d}" for n in range(1, 21)]
    for rule in RULES.values():
        assert rule.severity in ("low", "medium", "high", "severe") and rule.clause and rule.title
        assert rule.mode in ("event", "sweep", "event+sweep")
        assert (rule.mode != "event") == (rule.id in SWEPT), rule.id


def test_the_rule_tables_are_migrated(engine):
    assert pending_schema_changes(engine, models.metadata) == []


def test_a_clean_world_sweeps_to_nothing(feed):
    feed(person("p1"), person("p2", sex="F"), enrolled("e1", "p1", "PEN_EMP", 200001))
    feed(ben.SurvivalCertified(person_id="p1", channel="app", certified_on=date(2026, 1, 5)))
    feed(settled("PEN_EMP", ("p1", 202605, 300000)), approved("run1", "PEN_EMP", 202605, 300000),
         allocation("al1", "PEN_EMP", 300000, date(2026, 5, 20)))
    summary, run = feed.sweep(date(2026, 6, 10), tenure_rows=[], correction_entries=[])
    assert run.status == "done" and all(v["found"] == 0 for v in summary["rules"].values()), summary
    with Session(feed.engine) as session:
        assert session.execute(select(func.count()).select_from(Case)).scalar_one() == 0


async def test_catalogue_and_sweep_endpoint_pull_the_gateway_and_accounts_with_the_officers_token(
        start_service, auth):
    officer = auth("oversight_officer", subject="officer.wang")
    seen: list[tuple[str, str | None, dict]] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.path, request.headers.get("authorization"), dict(request.url.params)))
        if request.url.path == "/identity/reports/long-tenure":
            return httpx.Response(200, json=[{"username": "cashier.he", "display_name": "何", "unit": "财务科",
                                              "region": REGION, "role": "cashier",
                                              "granted_at": "2019-01-02T00:00:00+00:00", "tenure_days": 2700}])
        if request.url.path == "/identity/conflict-rules":
            return httpx.Response(200, json=[{"code": "ACCOUNTANT_CASHIER", "roles_a": ["accountant"],
                                              "roles_b": ["cashier"], "message": "会计与出纳岗位不相容",
                                              "basis": "004 第3项"}])
        if request.url.path == "/audit/entries":
            return httpx.Response(503, json={"error": "down"})
        return httpx.Response(404)

    async with start_service("oversight") as client:
        response = await client.get("/rules", headers=officer)
        assert response.status_code == 200 and [r["id"] for r in response.json()] == list(RULES)
        assert {r["id"]: r["mode"] for r in response.json()}["S20"] == "sweep"
        assert (await client.get("/rules", headers=auth("agency_clerk"))).status_code == 403
        assert (await client.get("/rules/S07", headers=officer)).json()["clause"] == "000 二(三)"
        client.app.state.http = httpx.AsyncClient(transport=httpx.MockTransport(upstream))
        response = await client.post("/rules/sweeps", headers=officer,
                                     json={"as_of": "2026-07-01", "rules": ["S19", "S20"]})
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["rules"]["S20"] == {**body["rules"]["S20"], "status": "ok", "created": 1}
        assert body["status"] == "done" and "HTTP 503" in body["inputs"]["corrections"]
        assert body["started_by"] == "officer.wang"
        assert {path for path, *_ in seen} == {"/identity/reports/long-tenure", "/identity/conflict-rules",
                                               "/audit/entries"}
        assert all(token == officer["Authorization"] for _, token, _ in seen)
        assert [p for path, _, p in seen if path == "/identity/reports/long-tenure"] == [{"years": "1"}]
        cases = (await client.get("/cases?rule_id=S20", headers=officer)).json()
        assert any(c["fact_key"] == "S20:cashier.he:cashier:2019-01-02" for c in cases["items"])
        refused = await client.post("/rules/sweeps", headers=officer, json={"rules": ["S07"]})
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "RULE_NOT_SWEPT"
        listed = (await client.get("/rules/sweeps", headers=officer)).json()
        assert [s["id"] for s in listed] == [body["id"]]
        assert (await client.post("/rules/sweeps", headers=auth("agency_approver"), json={})).status_code == 403


async def test_events_on_the_bus_open_cases_through_the_running_consumers(start_service, auth):
    async with start_service("oversight") as client:
        await publish_on_bus(client, person("p1"), life("p1", "deceased", death=date(2026, 3, 15)),
                             settled("PEN_EMP", ("p1", 202604, 310000)))
        officer = auth("oversight_officer")

        async def opened() -> list | None:
            items = (await client.get("/cases?rule_id=S01", headers=officer)).json()["items"]
            return items if len(items) == 1 else None

        cases = await wait_for(opened, timeout=20)
        assert cases[0]["fact_key"] == "S01:p1:202604"


async def test_sweep_endpoint_takes_a_month_or_a_range_of_months(start_service, auth):
    """``POST /rules/sweeps`` sweeps one month, a range or a list (default: last month); months
    not yet begun are refused, the running month is skipped by the month-end rules."""
    officer = auth("oversight_officer", subject="officer.wang")
    today = china_today()
    current = period_of(today)
    async with start_service("oversight") as client:
        _month_end_world(Feed(client.app.state.engine), (add_months(current, -2), current))

        async def sweep(**body: object) -> httpx.Response:
            return await client.post("/rules/sweeps", headers=officer,
                                     json={"rules": ["S12", "S13", "S15"], "as_of": today.isoformat(), **body})

        default = (await sweep()).json()
        # the balance left two months ago is still there at the end of last month
        assert default["months"] == [add_months(current, -1)] and default["rules"]["S13"]["created"] == 1
        one = (await sweep(month=add_months(current, -2))).json()
        assert one["months"] == [add_months(current, -2)] and one["rules"]["S13"]["created"] == 1
        span = await sweep(from_month=add_months(current, -3), to_month=current)
        assert span.status_code == 201, span.text
        body = span.json()
        assert body["months"] == [add_months(current, n) for n in (-3, -2, -1, 0)]
        assert body["rules"]["S13"]["months_not_ended"] == [current] and body["rules"]["S13"]["created"] == 0
        assert body["status"] == "done"
        refusals = {
            "MONTH_NOT_STARTED": {"month": add_months(current, 1)},
            "MONTH_RANGE_REVERSED": {"from_month": current, "to_month": add_months(current, -1)},
            "MONTH_RANGE_INCOMPLETE": {"from_month": current},
            "MONTH_RANGE_TOO_LONG": {"from_month": add_months(current, -30), "to_month": current},
            "MONTHS_AMBIGUOUS": {"month": current, "months": [current]},
        }
        for code, asked in refusals.items():
            refused = await sweep(**asked)
            assert refused.status_code == 422 and refused.json()["error"]["code"] == code, (code, refused.text)
        assert (await sweep(month=202613)).status_code == 422
        # the body is a strict request model: a number is not a day, a boolean not a month
        for bad in ({"as_of": 0}, {"months": [True]}, {"rules": ["S13\u202e"]}):
            refused = await sweep(**bad)
            assert refused.status_code == 422, (bad, refused.text)
        assert "INVALID_DATE" in (await sweep(as_of=0)).text
        rules = {r["id"]: r for r in (await client.get("/rules", headers=officer)).json()}
        assert rules["S13"]["month_end"] is True and rules["S12"]["month_end"] is False
