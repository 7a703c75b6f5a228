"""Inter-department data (EXCHANGE): partner batches matched against the registry, conflicts listed, unmatched kept,
re-uploads idempotent, reviewers resolving and dismissing, CSV in UTF-8 and GBK, and a 10 000-line batch."""

import asyncio
import json
import time
from collections import Counter
from datetime import date, timedelta

from sqlalchemy import event, func, select, update
from sqlmodel import Session

from services.accounts.models import ChangeHistory, Employer, ExchangeRecord, LifeEvent, Person
from services.accounts.persons.identity import birth_date_from_citizen_id, sex_from_citizen_id
from services.kernel import clock
from services.kernel.audit import verify_chain
from services.kernel.events import new_event_id
from services.kernel.models import AuditEntry, OutboxMessage
from tests.support.exchange import PARTNER, citizen_id, make_uscc, partner_headers, upload
from tests.support.statements import head

REGION = "150102"  # 呼和浩特市新城区
TODAY = clock.china_today()


# -- helpers ---------------------------------------------------------------------------------------------------------


def bad_checksum(cid: str) -> str:
    return cid[:-1] + ("0" if cid[-1] != "0" else "1")


def add_person(client, serial: int, name: str, *, region: str = REGION, **life) -> Person:  # noqa: ANN001
    """A registered person, written straight into the accounts database (the registry API is tested elsewhere)."""
    cid = citizen_id(serial)
    person = Person(id=new_event_id(), citizen_id=cid, name=name, sex=sex_from_citizen_id(cid),
                    birth_date=birth_date_from_citizen_id(cid), region=region,
                    registered_at=clock.utc_now(), registered_by="test", **life)
    with Session(client.app.state.engine, expire_on_commit=False) as session:
        session.add(person)
        session.commit()
    return person


def add_persons(client, serials: range, name: str = "张三") -> None:  # noqa: ANN001
    now = clock.utc_now()
    rows = []
    for serial in serials:
        cid = citizen_id(serial)
        rows.append({"id": new_event_id(), "citizen_id": cid, "name": name, "sex": sex_from_citizen_id(cid),
                     "birth_date": birth_date_from_citizen_id(cid), "region": REGION, "registered_at": now,
                     "registered_by": "test", "life_status": "alive", "nationality": "CHN",
                     "household_type": "urban", "version": 1})
    with Session(client.app.state.engine) as session:
        session.execute(Person.__table__.insert(), rows)
        session.commit()


def add_employer(client, serial: int, name: str) -> Employer:  # noqa: ANN001
    employer = Employer(id=new_event_id(), uscc=make_uscc(serial), name=name, region=REGION,
                        registered_at=clock.utc_now(), registered_by="test")
    with Session(client.app.state.engine, expire_on_commit=False) as session:
        session.add(employer)
        session.commit()
    return employer


def person_row(client, person_id: str) -> Person:  # noqa: ANN001
    with Session(client.app.state.engine) as session:
        return session.get(Person, person_id)


def outbox_types(client) -> list[str]:  # noqa: ANN001
    with Session(client.app.state.engine) as session:
        return list(session.execute(select(OutboxMessage.event_type).order_by(OutboxMessage.seq)).scalars())


def outbox_payloads(client, event_type: str) -> list[dict]:  # noqa: ANN001
    with Session(client.app.state.engine) as session:
        rows = session.execute(select(OutboxMessage.envelope).where(OutboxMessage.event_type == event_type)
                               .order_by(OutboxMessage.seq)).scalars()
        return [json.loads(r)["data"] for r in rows]


def count(client, model, *where) -> int:  # noqa: ANN001
    with Session(client.app.state.engine) as session:
        return session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def by_record_id(result: dict) -> dict[str, dict]:
    return {p["record_id"]: p for p in result["problems"]}


def code_of(line: dict) -> str:
    return line["reason"].split(":", 1)[0]


# -- matching and conflicts ------------------------------------------------------------------------------------------


async def test_death_batch_applies_matches_and_lists_conflicts_unmatched_and_invalid(start_service, settings, auth):
    async with start_service("accounts") as accounts:
        alive = add_person(accounts, 1, "王建国")
        other = add_person(accounts, 2, "李秀英")
        dead = add_person(accounts, 3, "赵大海", life_status="deceased", death_date=date(2023, 5, 1))
        same = add_person(accounts, 4, "钱小红", life_status="deceased", death_date=date(2023, 6, 1))
        young = add_person(accounts, 5, "孙一")
        prisoner = add_person(accounts, 6, "周二", life_status="imprisoned", imprisoned_from=date(2020, 1, 1))
        records = [
            {"record_id": "1", "citizen_id": alive.citizen_id, "name": "王建国", "death_date": "2024-03-02"},
            {"record_id": "2", "citizen_id": other.citizen_id, "name": "李秀云", "death_date": "2024-03-02"},
            {"record_id": "3", "citizen_id": citizen_id(900), "name": "无此人", "death_date": "2024-03-02"},
            {"record_id": "4", "citizen_id": bad_checksum(citizen_id(901)), "name": "号码错", "death_date": "2024-03-02"},
            {"record_id": "5", "citizen_id": dead.citizen_id, "name": "赵大海", "death_date": "2023-05-02"},
            {"record_id": "6", "citizen_id": same.citizen_id, "name": "钱小红", "death_date": "2023-06-01"},
            {"record_id": "7", "citizen_id": young.citizen_id, "name": "孙一",
             "death_date": (TODAY + timedelta(days=3)).isoformat()},
            {"record_id": "8", "citizen_id": young.citizen_id, "name": "孙一", "death_date": "1950-01-01"},
            {"record_id": "9", "citizen_id": young.citizen_id, "name": "孙一"},
            {"record_id": "1", "citizen_id": young.citizen_id, "name": "孙一", "death_date": "2024-01-01"},
            {"record_id": "10", "citizen_id": young.citizen_id, "name": "孙一", "death_date": "2024-13-01"},
            {"record_id": 11, "citizen_id": f" {prisoner.citizen_id.lower()} ", "name": "周 二", "death_date": "2024-04-04"},
        ]
        response = await upload(accounts, partner_headers(settings), "death", records)
        assert response.status_code == 201, response.text
        result = response.json()
        assert (result["total"], result["applied"], result["unmatched"], result["conflicts"], result["invalid"]) == \
            (12, 3, 1, 4, 4)
        assert result["source"] == PARTNER and result["duplicate_upload"] is False
        lines = by_record_id(result)
        assert code_of(lines["2"]) == "NAME_MISMATCH" and lines["2"]["status"] == "conflict"
        assert lines["3"]["status"] == "unmatched" and code_of(lines["3"]) == "PERSON_NOT_FOUND"
        assert lines["4"]["status"] == "invalid" and code_of(lines["4"]) == "INVALID_CITIZEN_ID"
        assert code_of(lines["5"]) == "DEATH_DATE_DIFFERS"
        assert (lines["6"]["status"], code_of(lines["6"])) == ("applied", "ALREADY_RECORDED")  # a no-op
        assert code_of(lines["7"]) == "DATE_IN_FUTURE" and code_of(lines["8"]) == "DATE_BEFORE_BIRTH"
        assert lines["9"]["status"] == "invalid" and code_of(lines["9"]) == "MISSING_FIELD"
        duplicate = next(p for p in result["problems"] if p["line_no"] == 10)
        assert duplicate["status"] == "invalid" and code_of(duplicate) == "DUPLICATE_RECORD_ID"
        assert code_of(lines["10"]) == "INVALID_DATE"

        # Applied: the person row, its history, a LifeEvent, PersonDied and PersonLifeStatusChanged.
        row = person_row(accounts, alive.id)
        assert (row.life_status, row.death_date, row.version) == ("deceased", date(2024, 3, 2), 2)
        jailed = person_row(accounts, prisoner.id)  # ids are normalised; spaces in names do not matter
        assert (jailed.life_status, jailed.death_date, jailed.imprisoned_from) == \
            ("deceased", date(2024, 4, 4), date(2020, 1, 1))
        assert person_row(accounts, other.id).life_status == "alive"
        assert person_row(accounts, dead.id).death_date == date(2023, 5, 1)
        assert person_row(accounts, same.id).version == 1
        assert count(accounts, LifeEvent, LifeEvent.kind == "died") == 2
        assert count(accounts, ChangeHistory, ChangeHistory.entity_id == alive.id,
                     ChangeHistory.action == "life_status_change") == 1
        died = outbox_payloads(accounts, "exchange.person.died.v1")
        assert [(d["person_id"], d["death_date"], d["source"], d["record_id"]) for d in died] == \
            [(alive.id, "2024-03-02", PARTNER, "1"), (prisoner.id, "2024-04-04", PARTNER, "11")]
        changed = outbox_payloads(accounts, "accounts.person.life_status_changed.v1")
        assert [(c["person_id"], c["life_status"], c["previous_status"], c["source"]) for c in changed] == \
            [(alive.id, "deceased", "alive", "exchange"), (prisoner.id, "deceased", "imprisoned", "exchange")]
        with Session(accounts.app.state.engine) as session:
            life_event = session.execute(select(LifeEvent).where(LifeEvent.person_id == alive.id)).scalar_one()
            assert changed[0]["source_ref"] == life_event.source_ref  # the exchange record, for tracing
            assert session.get(ExchangeRecord, life_event.source_ref).line_no == 1

        # The batch itself is on the audit chain.
        auditor = auth("internal_auditor")
        entries = (await accounts.get("/audit/entries", params={"entity_type": "exchange_batch"}, headers=auditor)).json()
        assert [(e["action"], e["actor_id"], e["actor_role"]) for e in entries] == \
            [("exchange_batch.receive", PARTNER, "partner_system")]
        assert (await accounts.get("/audit/verify", headers=auditor)).json()["ok"] is True


async def test_imprisonment_and_release(start_service, settings):
    async with start_service("accounts") as accounts:
        partner = partner_headers(settings, "partner.sfj")  # 司法局
        prisoner = add_person(accounts, 1, "周杰")
        free = add_person(accounts, 2, "吴敏")
        dead = add_person(accounts, 3, "郑和", life_status="deceased", death_date=date(2022, 1, 1))
        jailed = add_person(accounts, 4, "冯七", life_status="imprisoned", imprisoned_from=date(2021, 1, 1))
        imprison = await upload(accounts, partner, "imprisonment", [
            {"record_id": "a1", "citizen_id": prisoner.citizen_id, "name": "周杰",
             "imprisoned_from": "2023-02-01", "imprisoned_until": "2026-01-31"},
            {"record_id": "a2", "citizen_id": dead.citizen_id, "name": "郑和", "imprisoned_from": "2023-02-01"},
            {"record_id": "a3", "citizen_id": jailed.citizen_id, "name": "冯七", "imprisoned_from": "2022-02-01"},
            {"record_id": "a4", "citizen_id": free.citizen_id, "name": "吴敏",
             "imprisoned_from": "2023-02-01", "imprisoned_until": "2022-01-01"},
        ], batch_key="SF-1")
        assert imprison.status_code == 201, imprison.text
        lines = by_record_id(imprison.json())
        assert imprison.json()["applied"] == 1
        assert code_of(lines["a2"]) == "PERSON_DECEASED"
        assert code_of(lines["a3"]) == "ALREADY_IMPRISONED"
        assert lines["a4"]["status"] == "invalid"  # the sentence ends before it starts: the line is wrong
        row = person_row(accounts, prisoner.id)
        assert (row.life_status, row.imprisoned_from, row.imprisoned_until) == \
            ("imprisoned", date(2023, 2, 1), date(2026, 1, 31))
        [jailed_event] = outbox_payloads(accounts, "exchange.person.imprisoned.v1")
        assert jailed_event["imprisoned_until"] == "2026-01-31"

        release = await upload(accounts, partner, "release", [
            {"record_id": "r1", "citizen_id": free.citizen_id, "name": "吴敏", "released_on": "2024-01-01"},
            {"record_id": "r2", "citizen_id": prisoner.citizen_id, "name": "周杰", "released_on": "2023-01-01"},
            {"record_id": "r3", "citizen_id": prisoner.citizen_id, "name": "周杰", "released_on": "2024-06-30"},
            {"record_id": "r4", "citizen_id": dead.citizen_id, "name": "郑和", "released_on": "2024-06-30"},
        ], batch_key="SF-2")
        lines = by_record_id(release.json())
        assert code_of(lines["r1"]) == "RELEASE_WITHOUT_IMPRISONMENT"
        assert code_of(lines["r2"]) == "RELEASE_BEFORE_IMPRISONMENT"
        assert code_of(lines["r4"]) == "PERSON_DECEASED"
        assert release.json()["applied"] == 1
        row = person_row(accounts, prisoner.id)
        # Alive again; the served period stays on the row (S02 checks payments inside it).
        assert (row.life_status, row.imprisoned_from, row.imprisoned_until) == \
            ("alive", date(2023, 2, 1), date(2024, 6, 30))
        assert [e["released_on"] for e in outbox_payloads(accounts, "exchange.person.released.v1")] == ["2024-06-30"]
        assert count(accounts, LifeEvent, LifeEvent.person_id == prisoner.id) == 2


async def test_cremation_without_death_marks_the_person_deceased_until_a_death_record_refines_it(start_service, settings):
    async with start_service("accounts") as accounts:
        partner = partner_headers(settings)
        unreported = add_person(accounts, 1, "陈一")
        reported = add_person(accounts, 2, "陈二", life_status="deceased", death_date=date(2024, 2, 10))
        cremation = await upload(accounts, partner, "cremation", [
            {"record_id": "c1", "citizen_id": unreported.citizen_id, "name": "陈一", "cremation_date": "2024-03-05"},
            {"record_id": "c2", "citizen_id": reported.citizen_id, "name": "陈二", "cremation_date": "2024-02-01"},
        ], batch_key="HH-1")
        lines = by_record_id(cremation.json())
        assert code_of(lines["c1"]) == "DEATH_DATE_FROM_CREMATION" and lines["c1"]["status"] == "applied"
        assert code_of(lines["c2"]) == "CREMATION_BEFORE_DEATH"
        row = person_row(accounts, unreported.id)
        assert (row.life_status, row.death_date) == ("deceased", date(2024, 3, 5))
        assert [c["cremation_date"] for c in outbox_payloads(accounts, "exchange.person.cremated.v1")] == ["2024-03-05"]

        death = await upload(accounts, partner, "death", [
            {"record_id": "d1", "citizen_id": unreported.citizen_id, "name": "陈一", "death_date": "2024-03-01"},
        ], batch_key="SW-1")
        assert death.json()["applied"] == 1
        assert code_of(by_record_id(death.json())["d1"]) == "DEATH_DATE_REFINED"
        assert person_row(accounts, unreported.id).death_date == date(2024, 3, 1)

        again = await upload(accounts, partner, "death", [
            {"record_id": "d2", "citizen_id": unreported.citizen_id, "name": "陈一", "death_date": "2024-02-01"},
        ], batch_key="SW-2")
        assert code_of(by_record_id(again.json())["d2"]) == "DEATH_DATE_DIFFERS"  # a reported death is not refined


async def test_business_registrations_are_emitted_matched_or_not(start_service, settings):
    async with start_service("accounts") as accounts:
        partner = partner_headers(settings, "partner.scjg")  # 市场监管局
        registered = add_employer(accounts, 1, "呼和浩特市甲有限公司")
        result = (await upload(accounts, partner, "business_registration", [
            {"record_id": "1", "uscc": registered.uscc, "name": "呼和浩特市甲有限公司", "registered_on": "2024-01-02"},
            {"record_id": "2", "uscc": make_uscc(2), "name": "呼和浩特市乙有限公司", "registered_on": "2024-01-03"},
            {"record_id": "3", "uscc": make_uscc(3)[:-1] + "0", "name": "校验位错", "registered_on": "2024-01-03"},
            {"record_id": "4", "uscc": make_uscc(4), "name": "未来公司",
             "registered_on": (TODAY + timedelta(days=30)).isoformat()},
        ], batch_key="SC-1")).json()
        assert (result["applied"], result["unmatched"], result["conflicts"], result["invalid"]) == (1, 1, 1, 1)
        lines = by_record_id(result)
        assert code_of(lines["2"]) == "EMPLOYER_NOT_REGISTERED"
        assert code_of(lines["3"]) == "INVALID_USCC" and code_of(lines["4"]) == "DATE_IN_FUTURE"
        emitted = outbox_payloads(accounts, "exchange.business.registered.v1")
        assert [(e["uscc"], e["employer_id"], e["record_id"]) for e in emitted] == \
            [(registered.uscc, registered.id, "1"), (make_uscc(2), None, "2")]
        assert count(accounts, LifeEvent) == 0


# -- CSV ---------------------------------------------------------------------------------------------------------


async def upload_csv(client, headers, kind: str, content: bytes, batch_key: str = "CSV-1"):  # noqa: ANN001, ANN201
    return await client.post("/exchange/batches/csv", data={"batch_key": batch_key, "kind": kind},
                             files={"file": ("batch.csv", content, "text/csv")}, headers=headers)


async def test_csv_in_gbk_and_utf8_with_chinese_or_field_headers(start_service, settings):
    async with start_service("accounts") as accounts:
        partner = partner_headers(settings)
        first = add_person(accounts, 1, "欧阳娜娜")
        second = add_person(accounts, 2, "买买提·艾力")
        gbk = ("记录号,公民身份号码,姓名,死亡日期\r\n"
               f"L1,{first.citizen_id},欧阳娜娜,2024-05-01\r\n"
               f"L2,{bad_checksum(second.citizen_id)},买买提·艾力,2024-05-02\r\n").encode("gbk")
        response = await upload_csv(accounts, partner, "death", gbk)
        assert response.status_code == 201, response.text
        assert (response.json()["applied"], response.json()["invalid"]) == (1, 1)
        assert person_row(accounts, first.id).death_date == date(2024, 5, 1)

        utf8 = ("\ufeffrecord_id,citizen_id,name,death_date\n"
                f"L3,{second.citizen_id},买买提•艾力,2024-05-03\n\n").encode()
        response = await upload_csv(accounts, partner, "death", utf8, batch_key="CSV-2")
        assert response.status_code == 201 and response.json()["applied"] == 1  # • and · are one dot
        assert person_row(accounts, second.id).death_date == date(2024, 5, 3)

        again_as_json = await upload(accounts, partner, "death", [
            {"record_id": "L3", "citizen_id": second.citizen_id, "name": "买买提•艾力", "death_date": "2024-05-03"},
        ], batch_key="CSV-2")
        assert again_as_json.status_code == 200 and again_as_json.json()["duplicate_upload"] is True

        short_row = ("record_id,citizen_id,name,death_date\n"
                     f"L4,{first.citizen_id},欧阳娜娜,2024-05-01,extra\n").encode()
        shaped = (await upload_csv(accounts, partner, "death", short_row, batch_key="CSV-3")).json()
        assert code_of(shaped["problems"][0]) == "CSV_ROW_SHAPE"


async def test_csv_refusals_are_clear(start_service, settings):
    async with start_service("accounts") as accounts:
        partner = partner_headers(settings)
        undecodable = await upload_csv(accounts, partner, "death", b"record_id,citizen_id\n\xff\xfe\xff\x80\n")
        assert undecodable.status_code == 422 and undecodable.json()["error"]["code"] == "UNDECODABLE_FILE"
        binary = await upload_csv(accounts, partner, "death", b"PK\x03\x04\x00\x00\x00binary")
        assert binary.status_code == 422 and binary.json()["error"]["code"] == "UNDECODABLE_FILE"

        wrong = await upload_csv(accounts, partner, "death", "身份证号,姓名,火化日期\n1,2,3\n".encode("gbk"))
        assert wrong.status_code == 422
        error = wrong.json()["error"]
        assert error["code"] == "CSV_COLUMNS_INVALID"
        assert error["details"]["missing"] == ["record_id", "death_date"]
        assert error["details"]["unknown"] == ["火化日期"]

        header_only = await upload_csv(accounts, partner, "death", b"record_id,citizen_id,name,death_date\n")
        assert header_only.status_code == 422 and header_only.json()["error"]["code"] == "EMPTY_BATCH"
        bad_kind = await upload_csv(accounts, partner, "marriage", b"record_id\n1\n")
        assert bad_kind.status_code == 422
        assert count(accounts, ExchangeRecord) == 0


# -- idempotency -----------------------------------------------------------------------------------------------------


async def test_reupload_returns_the_first_result_and_changed_content_is_refused(start_service, settings, auth):
    async with start_service("accounts") as accounts:
        partner = partner_headers(settings)
        person = add_person(accounts, 1, "何六")
        records = [{"record_id": "1", "citizen_id": person.citizen_id, "name": "何六", "death_date": "2024-01-01"},
                   {"record_id": "2", "citizen_id": citizen_id(77), "name": "无此人", "death_date": "2024-01-01"}]
        first = await upload(accounts, partner, "death", records)
        assert first.status_code == 201
        events, audit = len(outbox_types(accounts)), count(accounts, AuditEntry)

        second = await upload(accounts, partner, "death", [dict(r, name=f" {r['name']} ") for r in records])
        assert second.status_code == 200
        assert second.json()["duplicate_upload"] is True and second.json()["id"] == first.json()["id"]
        assert {k: v for k, v in second.json().items() if k != "duplicate_upload"} == \
            {k: v for k, v in first.json().items() if k != "duplicate_upload"}
        assert len(outbox_types(accounts)) == events and count(accounts, AuditEntry) == audit
        assert count(accounts, ExchangeRecord) == 2

        changed = await upload(accounts, partner, "death", [records[0]])
        assert changed.status_code == 409 and changed.json()["error"]["code"] == "BATCH_KEY_REUSED"
        other_kind = await upload(accounts, partner, "cremation",
                                  [{"record_id": "1", "citizen_id": person.citizen_id, "name": "何六",
                                    "cremation_date": "2024-01-03"}])
        assert other_kind.status_code == 409

        # The batch key is the partner's own: another partner may use the same number.
        another = await upload(accounts, partner_headers(settings, "partner.wjw"), "death", [records[1]])
        assert another.status_code == 201 and another.json()["id"] != first.json()["id"]

        # Status of a batch: its partner and agency staff see it, another partner does not.
        batch_id = first.json()["id"]
        assert (await accounts.get(f"/exchange/batches/{batch_id}", headers=partner)).json()["status_counts"] == \
            {"applied": 1, "unmatched": 1}
        assert (await accounts.get(f"/exchange/batches/{batch_id}", headers=auth("agency_reviewer"))).status_code == 200
        hidden = await accounts.get(f"/exchange/batches/{batch_id}", headers=partner_headers(settings, "partner.wjw"))
        assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "EXCHANGE_BATCH_NOT_FOUND"
        mine = (await accounts.get("/exchange/batches", headers=partner)).json()
        assert [b["id"] for b in mine["items"]] == [batch_id]
        everyone = (await accounts.get("/exchange/batches", headers=auth("agency_reviewer"))).json()
        assert len(everyone["items"]) == 2
        found = (await accounts.get("/exchange/batches", params={"batch_key": "B-001"}, headers=partner)).json()
        assert found["items"][0]["unmatched"] == 1

        # Two uploads of one new batch at the same moment: one applies it, the other gets its result.
        racing = [{"record_id": "1", "citizen_id": citizen_id(78), "name": "无此人", "death_date": "2024-01-01"}]
        answers = await asyncio.gather(*(upload(accounts, partner, "death", racing, batch_key="RACE") for _ in range(2)))
        assert sorted(a.status_code for a in answers) == [200, 201]
        assert answers[0].json()["id"] == answers[1].json()["id"]

        envelope_errors = await accounts.post("/exchange/batches", headers=partner,
                                              json={"batch_key": "B-9", "kind": "death", "records": []})
        assert envelope_errors.status_code == 422
        too_many = await upload(accounts, partner, "death", [records[0]] * 10_001, batch_key="B-10")
        assert too_many.status_code == 422


# -- review ------------------------------------------------------------------------------------------------------


async def test_reviewers_resolve_and_dismiss_open_lines(start_service, settings, auth):
    async with start_service("accounts") as accounts:
        partner = partner_headers(settings)
        reviewer = auth("agency_reviewer", region="150100", subject="reviewer.liu")
        renamed = add_person(accounts, 1, "刘芳")
        records = [
            {"record_id": "1", "citizen_id": citizen_id(50), "name": "后登记", "death_date": "2024-02-02"},
            {"record_id": "2", "citizen_id": renamed.citizen_id, "name": "刘芳芳", "death_date": "2024-02-03"},
            {"record_id": "3", "citizen_id": bad_checksum(citizen_id(51)), "name": "错号", "death_date": "2024-02-03"},
            *[{"record_id": f"x{i}", "citizen_id": citizen_id(60 + i), "name": "外地", "death_date": "2024-02-03"}
              for i in range(4)],
        ]
        batch = (await upload(accounts, partner, "death", records)).json()
        assert (batch["unmatched"], batch["conflicts"], batch["invalid"]) == (5, 1, 1)

        # Listing by status, with a cursor.
        page1 = (await accounts.get("/exchange/records", params={"status": "unmatched", "limit": 3},
                                    headers=reviewer)).json()
        assert len(page1["items"]) == 3 and page1["next_cursor"]
        page2 = (await accounts.get("/exchange/records", params={"status": "unmatched", "limit": 3,
                                                                  "after": page1["next_cursor"]}, headers=reviewer)).json()
        assert len(page2["items"]) == 2 and page2["next_cursor"] is None
        assert len({r["id"] for r in page1["items"] + page2["items"]}) == 5
        open_lines = (await accounts.get("/exchange/records", headers=reviewer)).json()["items"]
        assert sorted(r["status"] for r in open_lines) == ["conflict", "invalid"] + ["unmatched"] * 5
        assert (await accounts.get("/exchange/records", headers=partner)).status_code == 403

        lines = {r["record_id"]: r for r in open_lines}
        # Unmatched until the person is registered; then resolving applies it.
        still = await accounts.post(f"/exchange/records/{lines['1']['id']}/resolve", json={"note": "查无此人"},
                                    headers=reviewer)
        assert still.status_code == 409 and still.json()["error"]["code"] == "RECORD_STILL_UNRESOLVED"
        late = add_person(accounts, 50, "后登记")
        resolved = await accounts.post(f"/exchange/records/{lines['1']['id']}/resolve",
                                       json={"note": "已补办参保登记后重新匹配"}, headers=reviewer)
        assert resolved.status_code == 200, resolved.text
        assert (resolved.json()["status"], resolved.json()["reviewed_by"], resolved.json()["person_id"]) == \
            ("resolved", "reviewer.liu", late.id)
        assert person_row(accounts, late.id).death_date == date(2024, 2, 2)
        assert [d["record_id"] for d in outbox_payloads(accounts, "exchange.person.died.v1")] == ["1"]
        again = await accounts.post(f"/exchange/records/{lines['1']['id']}/resolve", json={"note": "再次"},
                                    headers=reviewer)
        assert again.status_code == 409 and again.json()["error"]["code"] == "RECORD_NOT_RESOLVABLE"

        # A name conflict: refused again as it stands, applied when the reviewer accepts the difference.
        conflict = lines["2"]
        assert (await accounts.post(f"/exchange/records/{conflict['id']}/resolve", json={"note": "核对"},
                                    headers=reviewer)).status_code == 409
        accepted = await accounts.post(f"/exchange/records/{conflict['id']}/resolve",
                                       json={"note": "户籍核实：曾用名刘芳芳", "accept_name_difference": True},
                                       headers=reviewer)
        assert accepted.status_code == 200 and accepted.json()["reason"].startswith("NAME_DIFFERENCE_ACCEPTED")
        assert person_row(accounts, renamed.id).life_status == "deceased"

        # Dismissal needs a note; a dismissed line cannot be resolved.
        invalid = lines["3"]
        assert (await accounts.post(f"/exchange/records/{invalid['id']}/dismiss", json={},
                                    headers=reviewer)).status_code == 422
        dismissed = await accounts.post(f"/exchange/records/{invalid['id']}/dismiss",
                                        json={"note": "号码错误，已退回民政局"}, headers=reviewer)
        assert dismissed.json()["status"] == "dismissed" and dismissed.json()["review_note"] == "号码错误，已退回民政局"
        assert (await accounts.post(f"/exchange/records/{invalid['id']}/resolve", json={"note": "x"},
                                    headers=reviewer)).status_code == 409
        assert (await accounts.post(f"/exchange/records/{invalid['id']}/dismiss", json={"note": "x"},
                                    headers=reviewer)).status_code == 409
        clerk = auth("agency_clerk")
        assert (await accounts.post(f"/exchange/records/{lines['x0']['id']}/dismiss", json={"note": "x"},
                                    headers=clerk)).status_code == 403
        # Object-level: a reviewer of another district cannot apply to a person of this one.
        outsider = auth("agency_reviewer", region="150103")
        add_person(accounts, 60, "外地")
        refused = await accounts.post(f"/exchange/records/{lines['x0']['id']}/resolve", json={"note": "x"},
                                      headers=outsider)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "OUT_OF_REGION"

        # The batch status shows the lines as they are now; the arrival counts stay.
        status = (await accounts.get(f"/exchange/batches/{batch['id']}", headers=partner)).json()
        assert status["status_counts"] == {"resolved": 2, "dismissed": 1, "unmatched": 4}
        assert status["unmatched"] == 5
        one = (await accounts.get(f"/exchange/records/{lines['1']['id']}", headers=reviewer)).json()
        assert one["citizen_id"] == citizen_id(50) and one["payload"]["name"] == "后登记"
        masked = (await accounts.get(f"/exchange/records/{lines['1']['id']}", headers=auth("agency_approver"))).json()
        assert masked["citizen_id"] == citizen_id(50)  # approvers work with full numbers (kernel.pii)
        actions = [e["action"] for e in (await accounts.get(
            "/audit/entries", params={"entity_type": "exchange_record"}, headers=auth("internal_auditor"))).json()]
        assert actions == ["exchange_record.resolve", "exchange_record.resolve", "exchange_record.dismiss"]


# -- volume ------------------------------------------------------------------------------------------------------


async def test_a_10000_line_batch_in_one_transaction_with_one_lookup(start_service, settings):
    async with start_service("accounts") as accounts:
        add_persons(accounts, range(9_900))
        records = [{"record_id": str(i), "citizen_id": citizen_id(i), "name": "张三",
                    "death_date": (date(2024, 1, 1) + timedelta(days=i % 300)).isoformat()}
                   for i in range(10_000)]
        person_selects: list[str] = []

        def watch(_conn, _cursor, statement, *_args):  # noqa: ANN001
            if statement.lstrip().upper().startswith("SELECT") and "FROM person " in statement + " ":
                person_selects.append(statement)

        engine = accounts.app.state.engine
        event.listen(engine, "before_cursor_execute", watch)
        started = time.perf_counter()
        response = await upload(accounts, partner_headers(settings), "death", records, batch_key="BIG-1")
        elapsed = time.perf_counter() - started
        event.remove(engine, "before_cursor_execute", watch)
        assert response.status_code == 201, response.text[:500]
        result = response.json()
        assert (result["total"], result["applied"], result["unmatched"]) == (10_000, 9_900, 100)
        assert len(person_selects) == 1, "one query for all the batch's citizen ids"
        assert count(accounts, Person, Person.life_status == "deceased") == 9_900
        assert count(accounts, LifeEvent) == 9_900
        assert count(accounts, OutboxMessage, OutboxMessage.event_type == "exchange.person.died.v1") == 9_900
        print(f"\n10 000-line death batch: {elapsed:.2f} s")


async def test_a_batch_over_several_write_chunks_keeps_every_outcome_and_every_persons_facts(start_service, settings):
    """2 500 lines (three write chunks): each line's outcome as if applied alone, one history row, audit entry and
    two events per changed person, in line order; a person met again in a later chunk sees the earlier change; the
    writes are a few statements per chunk; the same batch again, or its lines under a new batch key, change
    nothing."""
    async with start_service("accounts") as accounts:
        engine = accounts.app.state.engine
        add_persons(accounts, range(2_400))
        first_date = {i: date(2024, 1, 1) + timedelta(days=i % 300) for i in range(2_400)}
        with Session(engine) as session:
            for rest, death in ((9, None), (11, date(2023, 1, 1))):  # deceased on that line's date / another
                for i in range(rest, 2_400, 100):
                    session.execute(update(Person).where(Person.citizen_id == citizen_id(i))
                                    .values(life_status="deceased", death_date=death or first_date[i]))
            session.commit()

        records, expected, changed = [], {}, set()
        for i in range(2_400):
            record = {"record_id": f"r{i}", "citizen_id": citizen_id(i), "name": "张三",
                      "death_date": first_date[i].isoformat()}
            if i % 100 == 7:
                record["name"], expected[f"r{i}"] = "李四", "NAME_MISMATCH"
            elif i % 100 == 9:
                expected[f"r{i}"] = "ALREADY_RECORDED"
            elif i % 100 == 11:
                expected[f"r{i}"] = "DEATH_DATE_DIFFERS"
            else:
                changed.add(i)
            records.append(record)
        for i in range(2_400, 2_440):
            records.append({"record_id": f"r{i}", "citizen_id": citizen_id(5_000 + i), "name": "无此人",
                            "death_date": "2024-01-01"})
            expected[f"r{i}"] = "PERSON_NOT_FOUND"
        for i in range(2_440, 2_450):
            records.append({"record_id": f"r{i}", "citizen_id": bad_checksum(citizen_id(i)), "name": "号码错",
                            "death_date": "2024-01-01"})
            expected[f"r{i}"] = "INVALID_CITIZEN_ID"
        for j, i in enumerate(range(2_450, 2_500)):  # persons 20..69 again, two chunks after their first line
            person = 20 + j
            same = j % 2 == 0
            records.append({"record_id": f"r{i}", "citizen_id": citizen_id(person), "name": "张三",
                            "death_date": (first_date[person] if same else date(2023, 6, 1)).isoformat()})
            expected[f"r{i}"] = "ALREADY_RECORDED" if same else "DEATH_DATE_DIFFERS"

        statements: list[str] = []

        def watch(_conn, _cursor, statement, *_args):  # noqa: ANN001
            statements.append(statement)

        event.listen(engine, "before_cursor_execute", watch)
        response = await upload(accounts, partner_headers(settings), "death", records, batch_key="CHUNKS-1")
        event.remove(engine, "before_cursor_execute", watch)
        assert response.status_code == 201, response.text[:500]
        result = response.json()
        assert (result["total"], result["applied"], result["conflicts"], result["unmatched"], result["invalid"]) == \
            (2_500, len(changed) + 49, 73, 40, 10)
        assert {p["record_id"]: code_of(p) for p in result["problems"]} == expected
        writes = Counter(head(s) for s in statements if s.startswith(("INSERT", "UPDATE person ", "COPY")))
        chunks = 3  # lines 1-1 000, 1 001-2 000, 2 001-2 500: each chunk's effects in one statement per table
        assert {t: writes[t] for t in ("INSERT INTO exchange_record", "UPDATE person SET", "INSERT INTO change_history",
                                       "INSERT INTO life_event", "INSERT INTO outbox")} == dict.fromkeys(
            ("INSERT INTO exchange_record", "UPDATE person SET", "INSERT INTO change_history", "INSERT INTO life_event",
             "INSERT INTO outbox"), chunks)
        assert writes["INSERT INTO audit_log"] <= chunks + 1  # the persons' entries per chunk, then the batch's
        assert sum(1 for s in statements if s.startswith("SELECT audit_head")) <= chunks + 2

        with Session(engine) as session:
            lines = {json.loads(r.payload)["record_id"]: r for r in session.execute(
                select(ExchangeRecord).where(ExchangeRecord.batch_id == result["id"])).scalars()}
            persons = {p.citizen_id: p for p in session.execute(select(Person)).scalars()}
            changed_ids = {persons[citizen_id(i)].id for i in changed}
            for i in changed:
                person = persons[citizen_id(i)]
                assert (person.life_status, person.death_date, person.version) == ("deceased", first_date[i], 2)
            assert persons[citizen_id(7)].life_status == "alive" and persons[citizen_id(7)].version == 1
            assert persons[citizen_id(11)].death_date == date(2023, 1, 1)

            # One history row and one audit entry per changed person, naming the exchange line that changed it.
            line_of_person = {lines[f"r{i}"].person_id: lines[f"r{i}"].id for i in changed}
            history = session.execute(select(ChangeHistory).where(ChangeHistory.action == "life_status_change")).scalars().all()
            assert {(h.entity_id, h.version, h.reason) for h in history} == \
                {(pid, 2, f"exchange {row}") for pid, row in line_of_person.items()}
            audit = session.execute(select(AuditEntry).where(AuditEntry.action == "person.life_status_change")
                                    .order_by(AuditEntry.seq)).scalars().all()
            assert [a.entity_id for a in audit] == [lines[f"r{i}"].person_id for i in sorted(changed)]  # line order
            assert all(a.reason == f"exchange {line_of_person[a.entity_id]}" for a in audit)
            assert all(json.loads(a.detail)["changes"]["life_status"] == ["alive", "deceased"] for a in audit)
            last = session.execute(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).scalar_one()
            assert last.action == "exchange_batch.receive"
        assert count(accounts, LifeEvent) == len(changed)

        # Per person: accounts.person.life_status_changed, then exchange.person.died, in line order.
        with Session(engine) as session:
            envelopes = [json.loads(e) for e in session.execute(
                select(OutboxMessage.envelope).order_by(OutboxMessage.seq)).scalars()]
        expected_order = []
        for i in sorted(changed):
            pid = lines[f"r{i}"].person_id
            expected_order += [("accounts.person.life_status_changed.v1", pid), ("exchange.person.died.v1", pid)]
        assert [(e["type"], e["data"]["person_id"]) for e in envelopes] == expected_order
        assert {e["subject"] for e in envelopes} == changed_ids
        assert all(e["data"]["source_ref"] == line_of_person[e["data"]["person_id"]]
                   for e in envelopes if e["type"].startswith("accounts."))
        assert verify_chain(engine).ok

        # The same batch again: its first result, nothing written.
        totals = (len(envelopes), count(accounts, AuditEntry), count(accounts, ChangeHistory), count(accounts, LifeEvent))
        again = await upload(accounts, partner_headers(settings), "death", records, batch_key="CHUNKS-1")
        assert again.status_code == 200 and again.json()["duplicate_upload"] is True
        assert again.json()["problems"] == result["problems"]
        assert (len(outbox_types(accounts)), count(accounts, AuditEntry), count(accounts, ChangeHistory),
                count(accounts, LifeEvent)) == totals

        # The same lines under a new batch key: every applied line is now a no-op, no event, no history.
        later = await upload(accounts, partner_headers(settings), "death", records, batch_key="CHUNKS-2")
        assert later.status_code == 201
        redo = {p["record_id"]: code_of(p) for p in later.json()["problems"]}
        assert {r for r, c in redo.items() if c == "ALREADY_RECORDED"} == \
            {f"r{i}" for i in changed} | {r for r, c in expected.items() if c == "ALREADY_RECORDED"}
        assert later.json()["applied"] == result["applied"]
        assert (len(outbox_types(accounts)), count(accounts, ChangeHistory), count(accounts, LifeEvent)) == \
            (totals[0], totals[2], totals[3])
        assert count(accounts, AuditEntry) == totals[1] + 1  # the batch's own entry only
        assert verify_chain(engine).ok


def test_a_csv_field_beyond_the_csv_limit_is_a_clear_refusal():
    from services.accounts.exchange.schemas import BatchKind
    from services.accounts.exchange.service import parse_csv
    from services.kernel.errors import DomainError

    data = ("record_id,citizen_id,name,death_date\nD-1,x," + "名" * 200_000 + ",2026-01-01\n").encode()
    try:
        parse_csv(data, BatchKind.death)
    except DomainError as refused:
        assert (refused.code, refused.status) == ("INVALID_CSV", 422)
    else:
        raise AssertionError("a 200 000-character field was read")


async def test_a_field_name_with_control_characters_is_quoted_not_stored(start_service, settings, auth):
    """A partner's unknown field named with a NUL went into the line's reason as is: PostgreSQL refuses NUL in any
    text column (a 500 on PostgreSQL). The name is shown escaped."""
    async with start_service("accounts") as accounts:
        partner = partner_headers(settings)
        response = await upload(accounts, partner, "death", [
            {"record_id": "1", "citizen_id": "15010219650315916X", "name": "王五", "death_date": "2024-03-02",
             "备注\x00\u202e": "x"}])
        assert response.status_code == 201, response.text
        reviewer = auth("agency_reviewer", region="150100", subject="reviewer.liu")
        [line] = (await accounts.get("/exchange/records", params={"status": "invalid"}, headers=reviewer)).json()["items"]
        assert "备注\\u0000\\u202e" in line["reason"] and "\x00" not in line["reason"], line["reason"]
