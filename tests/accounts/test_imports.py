"""Bulk import: employers, persons and enrolments from CSV (UTF-8, UTF-8 with BOM, GBK) and Excel,
row by row or all or nothing, with every bad row reported by row number, stable code and Chinese message."""

import io
import json
from datetime import date

import openpyxl
from sqlalchemy import func, select
from sqlmodel import Session

from services.accounts.imports.service import CHUNK_ROWS
from services.accounts.models import Employer, Enrolment, ImportRejection, Person
from services.kernel.models import AuditEntry
from tests.support.registry import (
    CITY,
    OTHER_DISTRICT,
    REGION,
    engine_of,
    error_code,
    make_uscc,
    outbox,
)
from tests.support.accounts import EMPLOYER_HEADER, ENROLMENT_HEADER, PERSON_HEADER, cid, csv_bytes, person



def xlsx_bytes(header: list, rows: list[list]) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


async def upload(client, kind: str, data: bytes, headers: dict, *, mode: str | None = None,  # noqa: ANN001
                 filename: str = "import.csv"):
    params = {"mode": mode} if mode else {}
    return await client.post(f"/imports/{kind}", params=params, headers=headers,
                             files={"file": (filename, data, "application/octet-stream")})


async def rejections(client, job_id: str, headers: dict, **params) -> list[dict]:  # noqa: ANN001
    """Every rejected row, following the cursor."""
    items, after = [], None
    while True:
        query = {**params, **({"after": after} if after else {})}
        page = (await client.get(f"/imports/{job_id}/rejections", params=query, headers=headers)).json()
        items += page["items"]
        after = page["next_cursor"]
        if after is None:
            return items


def by_row(items: list[dict]) -> dict[int, str]:
    return {r["row_no"]: r["code"] for r in items}


def count(client, model) -> int:  # noqa: ANN001
    with Session(engine_of(client)) as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


# -- persons ---------------------------------------------------------------------------------------------------------


async def test_persons_per_row_stores_good_rows_and_reports_each_bad_one(start_service, auth):
    clerk = auth("agency_clerk", region=REGION, subject="clerk.li")
    async with start_service("accounts") as accounts:
        already = await upload(accounts, "persons", csv_bytes(PERSON_HEADER, [person(900)]), clerk)
        assert already.status_code == 201 and already.json()["accepted_rows"] == 1

        good_id = cid(1)
        bad_check = good_id[:-1] + ("0" if good_id[-1] != "0" else "1")
        rows = [
            person(1, sex="男", born="1985-06-15"),           # row 2: good, declared sex and birth date agree
            [bad_check, "校验错", REGION, "", ""],             # row 3: check digit wrong
            person(2),                                         # row 4: good
            person(1, name="重复者"),                           # row 5: same id as row 2
            person(900),                                       # row 6: already in the database
            person(3, region=OTHER_DISTRICT),                  # row 7: another district
            person(4, sex="女"),                                # row 8: the id says male
            [cid(5), "", REGION, "", ""],          # row 9: no name
            person(6, born="1985-06-16"),                      # row 10: the id says 1985-06-15
            ["", "", "", "", ""],                              # row 11: blank, skipped
            [cid(7), "人员7", "159999", "", ""],    # row 12: no such region
        ]
        response = await upload(accounts, "persons", csv_bytes(PERSON_HEADER, rows), clerk)
        assert response.status_code == 201, response.text
        job = response.json()
        assert (job["status"], job["mode"], job["file_format"], job["encoding"]) == ("completed", "per_row", "csv", "utf-8")
        assert (job["total_rows"], job["accepted_rows"], job["rejected_rows"]) == (10, 2, 8)

        items = await rejections(accounts, job["id"], clerk)
        assert by_row(items) == {
            3: "INVALID_CITIZEN_ID", 5: "DUPLICATE_IN_FILE", 6: "PERSON_ALREADY_REGISTERED", 7: "OUT_OF_REGION",
            8: "SEX_MISMATCH", 9: "REQUIRED_FIELD_MISSING", 10: "BIRTH_DATE_MISMATCH", 12: "INVALID_REGION_CODE",
        }
        messages = {r["row_no"]: r["message"] for r in items}
        assert "校验位" in messages[3] and "第 2 行" in messages[5] and "已登记" in messages[6]
        assert "150103" in messages[7] and "姓名" in messages[9]
        assert next(r for r in items if r["row_no"] == 5)["raw"]["姓名"] == "重复者"

        with Session(engine_of(accounts)) as session:
            stored = {p.citizen_id: p for p in session.execute(select(Person)).scalars()}
        assert set(stored) == {cid(900), cid(1), cid(2)}
        first = stored[cid(1)]
        assert (first.name, first.sex, first.birth_date, first.region) == ("人员1", "M", date(1985, 6, 15), REGION)
        assert first.registered_by == "clerk.li"

        events = outbox(accounts, "accounts.persons.imported.v1")
        assert [len(e["persons"]) for e in events] == [1, 2]
        assert events[1]["import_job_id"] == job["id"]
        assert {p["citizen_id"] for p in events[1]["persons"]} == {cid(1), cid(2)}

        summary = (await accounts.get(f"/imports/{job['id']}", headers=clerk)).json()
        assert summary == job
        listed = (await accounts.get("/imports", headers=clerk)).json()["items"]
        assert [j["id"] for j in listed] == [job["id"], already.json()["id"]]


async def test_chunks_are_batched_events_and_audit_entries_not_rows(start_service, auth):
    clerk = auth("agency_clerk", region=CITY)
    n = 2 * CHUNK_ROWS + 500
    rows = [person(i) for i in range(1, n + 1)]
    rows.append(person(7))  # a duplicate of row 8, in the third chunk
    async with start_service("accounts") as accounts:
        job = (await upload(accounts, "persons", csv_bytes(PERSON_HEADER, rows), clerk)).json()
        assert (job["total_rows"], job["accepted_rows"], job["rejected_rows"]) == (n + 1, n, 1)
        assert by_row(await rejections(accounts, job["id"], clerk)) == {n + 2: "DUPLICATE_IN_FILE"}
        events = outbox(accounts, "accounts.persons.imported.v1")
        assert [len(e["persons"]) for e in events] == [1000, 1000, 500]
        with Session(engine_of(accounts)) as session:
            actions = list(session.execute(select(AuditEntry.action).order_by(AuditEntry.seq)).scalars())
        assert actions == ["import.started", *["import.persons.stored"] * 3, "import.completed"]
        assert count(accounts, Person) == n


async def test_all_or_nothing_stores_nothing_when_a_row_is_bad_and_leaves_stored_data_alone(start_service, auth):
    clerk = auth("agency_clerk", region=REGION)
    async with start_service("accounts") as accounts:
        first = await upload(accounts, "persons", csv_bytes(PERSON_HEADER, [person(i) for i in (1, 2, 3)]), clerk,
                             mode="all_or_nothing")
        assert first.json()["status"] == "completed" and first.json()["accepted_rows"] == 3
        with Session(engine_of(accounts)) as session:
            before = sorted(p.model_dump_json() for p in session.execute(select(Person)).scalars())
        events_before = len(outbox(accounts))

        rows = [
            person(10),
            person(2, name="改名者"),          # row 3: already registered (must not overwrite it)
            person(11),
            ["11010519491231002Y", "坏号码", REGION, "", ""],  # row 5
            person(10),                       # row 6: duplicate of row 2
            person(12),
        ]
        response = await upload(accounts, "persons", csv_bytes(PERSON_HEADER, rows), clerk, mode="all_or_nothing")
        assert response.status_code == 201
        job = response.json()
        assert (job["status"], job["total_rows"], job["accepted_rows"], job["rejected_rows"]) == ("rejected", 6, 0, 3)
        assert by_row(await rejections(accounts, job["id"], clerk)) == {
            3: "PERSON_ALREADY_REGISTERED", 5: "INVALID_CITIZEN_ID", 6: "DUPLICATE_IN_FILE"}

        with Session(engine_of(accounts)) as session:
            after = sorted(p.model_dump_json() for p in session.execute(select(Person)).scalars())
        assert after == before
        assert len(outbox(accounts)) == events_before

        fixed = [person(10), person(11), person(12)]
        done = (await upload(accounts, "persons", csv_bytes(PERSON_HEADER, fixed), clerk, mode="all_or_nothing")).json()
        assert (done["status"], done["accepted_rows"], done["rejected_rows"]) == ("completed", 3, 0)
        assert count(accounts, Person) == 6


# -- files -----------------------------------------------------------------------------------------------------------


async def test_wrong_or_missing_columns_are_refused_naming_them(start_service, auth):
    clerk = auth("agency_clerk", region=REGION)
    async with start_service("accounts") as accounts:
        missing = await upload(accounts, "persons", csv_bytes(["公民身份号码", "行政区划代码"], [person(1)[::2]]), clerk)
        assert missing.status_code == 422 and error_code(missing) == "IMPORT_COLUMNS_INVALID"
        assert "姓名" in missing.json()["error"]["message"]
        assert missing.json()["error"]["details"]["missing"] == ["姓名"]

        unknown = await upload(accounts, "persons", csv_bytes([*PERSON_HEADER, "工资"], [[*person(1), "5000"]]), clerk)
        assert unknown.status_code == 422 and error_code(unknown) == "IMPORT_COLUMNS_INVALID"
        assert unknown.json()["error"]["details"]["unknown"] == ["工资"]

        employer_file = await upload(accounts, "enrolments", csv_bytes(EMPLOYER_HEADER, [[make_uscc(1), "甲", REGION, ""]]), clerk)
        assert error_code(employer_file) == "IMPORT_COLUMNS_INVALID"
        assert set(employer_file.json()["error"]["details"]["missing"]) == {"公民身份号码", "险种", "参保开始年月"}

        extra_cell = csv_bytes(PERSON_HEADER, [person(2), [*person(3), "多余"]])
        malformed = (await upload(accounts, "persons", extra_cell, clerk)).json()
        assert by_row(await rejections(accounts, malformed["id"], clerk)) == {3: "ROW_MALFORMED"}

        english = await upload(accounts, "persons", csv_bytes(["Citizen_ID", "name", "region", "*sex"], [person(1)[:4]]), clerk)
        assert english.status_code == 201 and english.json()["accepted_rows"] == 1
        assert count(accounts, Person) == 2


async def test_gbk_and_utf8_bom_files_are_read(start_service, auth):
    clerk = auth("agency_clerk", region=REGION)
    async with start_service("accounts") as accounts:
        gbk = await upload(accounts, "persons", csv_bytes(PERSON_HEADER, [person(1, name="张三丰", sex="男")], encoding="gbk"), clerk)
        assert gbk.status_code == 201, gbk.text
        assert (gbk.json()["encoding"], gbk.json()["accepted_rows"]) == ("gbk", 1)

        bom = b"\xef\xbb\xbf" + csv_bytes(PERSON_HEADER, [person(2, name="李四")])
        with_bom = await upload(accounts, "persons", bom, clerk)
        assert with_bom.status_code == 201, with_bom.text
        assert (with_bom.json()["encoding"], with_bom.json()["accepted_rows"]) == ("utf-8-sig", 1)

        tabs = "\t".join(PERSON_HEADER) + "\n" + "\t".join(person(3, name="王五")) + "\n"
        assert (await upload(accounts, "persons", tabs.encode(), clerk)).json()["accepted_rows"] == 1

        with Session(engine_of(accounts)) as session:
            names = set(session.execute(select(Person.name)).scalars())
        assert names == {"张三丰", "李四", "王五"}

        garbage = await upload(accounts, "persons", "公民身份号码,姓名\n".encode() + b"\xff\xfe\x80\xff\x00\x81", clerk)
        assert garbage.status_code == 422 and error_code(garbage) == "IMPORT_ENCODING_INVALID"
        xls = await upload(accounts, "persons", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, clerk)
        assert xls.status_code == 422 and error_code(xls) == "IMPORT_FORMAT_UNSUPPORTED"
        assert count(accounts, Person) == 3


async def test_empty_files_are_refused(start_service, auth):
    clerk = auth("agency_clerk", region=REGION)
    async with start_service("accounts") as accounts:
        for data in (b"", b"\r\n \r\n", b"\xef\xbb\xbf", csv_bytes(PERSON_HEADER, []), csv_bytes(PERSON_HEADER, [[""] * 5]),
                     xlsx_bytes([], []), xlsx_bytes(PERSON_HEADER, [])):
            response = await upload(accounts, "persons", data, clerk)
            assert response.status_code == 422, (data[:20], response.text)
            assert error_code(response) == "IMPORT_FILE_EMPTY"
        assert (await accounts.get("/imports", headers=clerk)).json()["items"] == []


async def test_excel_files_are_read_with_typed_cells(start_service, auth):
    clerk = auth("agency_clerk", region=REGION)
    header = ["Citizen ID", "姓名", "参保地", "性别", "出生日期", "户口性质"]
    rows = [
        [cid(1), "赵六", REGION, "男", date(1985, 6, 15), "农村"],
        [cid(2), "钱七", int(REGION), "M", "1985/6/15", "非农业"],
        [cid(3), "孙八", REGION, "女", None, None],  # row 4: the id says male
        [None, None, None, None, None, None],
        [int(cid(4)[:17] + "0"), "周九", REGION, None, None, None],  # row 6: typed as a number, digits lost
    ]
    async with start_service("accounts") as accounts:
        response = await upload(accounts, "persons", xlsx_bytes(header, rows), clerk, filename="legacy.xlsx")
        assert response.status_code == 201, response.text
        job = response.json()
        assert (job["file_format"], job["encoding"], job["filename"]) == ("xlsx", None, "legacy.xlsx")
        assert (job["total_rows"], job["accepted_rows"], job["rejected_rows"]) == (4, 2, 2)
        items = await rejections(accounts, job["id"], clerk)
        assert by_row(items) == {4: "SEX_MISMATCH", 6: "INVALID_CITIZEN_ID"}
        assert "文本格式" in items[1]["message"]
        with Session(engine_of(accounts)) as session:
            stored = {p.name: p for p in session.execute(select(Person)).scalars()}
        assert stored["赵六"].household_type == "rural" and stored["钱七"].household_type == "urban"
        assert stored["钱七"].citizen_id == cid(2)


async def test_a_title_row_above_the_header_is_skipped_and_row_numbers_stay_true(start_service, auth):
    clerk = auth("agency_clerk", region=REGION)
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["新城区参保人员花名册（旧系统导出）"])
    sheet.append(["导出日期：2024-01-31"])
    sheet.append([])
    sheet.append(PERSON_HEADER)
    sheet.append(person(1))
    sheet.append(person(1))
    out = io.BytesIO()
    workbook.save(out)
    async with start_service("accounts") as accounts:
        job = (await upload(accounts, "persons", out.getvalue(), clerk, filename="花名册.xlsx")).json()
        assert (job["accepted_rows"], job["rejected_rows"]) == (1, 1)
        [dup] = await rejections(accounts, job["id"], clerk)
        assert (dup["row_no"], dup["code"]) == (6, "DUPLICATE_IN_FILE") and "第 5 行" in dup["message"]


# -- access ----------------------------------------------------------------------------------------------------------


async def test_only_clerks_import_and_a_job_is_seen_by_its_clerk_and_internal_control(start_service, auth):
    clerk = auth("agency_clerk", region=REGION, subject="clerk.a")
    other = auth("agency_clerk", region=REGION, subject="clerk.b")
    data = csv_bytes(PERSON_HEADER, [person(1)])
    async with start_service("accounts") as accounts:
        for role in ("agency_reviewer", "oversight_officer", "partner_system"):
            refused = await upload(accounts, "persons", data, auth(role, region=REGION))
            assert refused.status_code == 403 and error_code(refused) == "FORBIDDEN"
        job = (await upload(accounts, "persons", data, clerk)).json()
        assert (await accounts.get(f"/imports/{job['id']}", headers=other)).status_code == 404
        assert (await accounts.get(f"/imports/{job['id']}/rejections", headers=other)).status_code == 404
        assert (await accounts.get("/imports", headers=other)).json()["items"] == []
        auditor = auth("internal_auditor")
        assert (await accounts.get(f"/imports/{job['id']}", headers=auditor)).json()["accepted_rows"] == 1
        unknown_kind = await upload(accounts, "pensions", data, clerk)
        assert unknown_kind.status_code == 422


async def test_rejections_page_with_a_cursor(start_service, auth):
    clerk = auth("agency_clerk", region=REGION)
    rows = [[f"A{i:017d}", f"坏{i}", REGION, "", ""] for i in range(250)]
    async with start_service("accounts") as accounts:
        job = (await upload(accounts, "persons", csv_bytes(PERSON_HEADER, rows), clerk)).json()
        assert job["rejected_rows"] == 250 and job["accepted_rows"] == 0
        page = (await accounts.get(f"/imports/{job['id']}/rejections", params={"limit": 100}, headers=clerk)).json()
        assert len(page["items"]) == 100 and page["next_cursor"]
        everything = await rejections(accounts, job["id"], clerk, limit=100)
        assert [r["row_no"] for r in everything] == list(range(2, 252))
        only = await rejections(accounts, job["id"], clerk, code="DUPLICATE_IN_FILE")
        assert only == []
        bad_cursor = await accounts.get(f"/imports/{job['id']}/rejections", params={"after": "x"}, headers=clerk)
        assert bad_cursor.status_code == 422 and error_code(bad_cursor) == "INVALID_CURSOR"


# -- employers and enrolments ----------------------------------------------------------------------------------------


async def import_registry(accounts, city_clerk: dict) -> None:  # noqa: ANN001
    employers = [
        [make_uscc(1), "正常单位", REGION, ""],
        [make_uscc(2), "已注销单位", REGION, "注销"],
        [make_uscc(3), "外区单位", OTHER_DISTRICT, ""],
        [make_uscc(1), "重复单位", REGION, ""],
    ]
    job = (await upload(accounts, "employers", csv_bytes(EMPLOYER_HEADER, employers), city_clerk)).json()
    assert (job["accepted_rows"], job["rejected_rows"]) == (3, 1)
    persons = [person(i) for i in range(1, 8)]
    job = (await upload(accounts, "persons", csv_bytes(PERSON_HEADER, persons), city_clerk)).json()
    assert job["accepted_rows"] == 7


async def test_employers_import_checks_ids_region_and_reports_status(start_service, auth):
    clerk = auth("agency_clerk", region=REGION)
    rows = [
        [make_uscc(1), "甲公司", REGION, "正常"],
        [make_uscc(2)[:-1] + "0" if make_uscc(2)[-1] != "0" else make_uscc(2)[:-1] + "1", "乙公司", REGION, ""],
        [make_uscc(3), "丙公司", OTHER_DISTRICT, ""],
        [make_uscc(4), "丁公司", REGION, "注销"],
        [make_uscc(1), "甲公司分号", REGION, ""],
        [make_uscc(5), "戊公司", REGION, "倒闭"],
    ]
    async with start_service("accounts") as accounts:
        job = (await upload(accounts, "employers", csv_bytes(EMPLOYER_HEADER, rows), clerk)).json()
        assert (job["accepted_rows"], job["rejected_rows"]) == (2, 4)
        assert by_row(await rejections(accounts, job["id"], clerk)) == {
            3: "INVALID_USCC", 4: "OUT_OF_REGION", 6: "DUPLICATE_IN_FILE", 7: "INVALID_STATUS"}
        again = (await upload(accounts, "employers", csv_bytes(EMPLOYER_HEADER, rows[:1]), clerk)).json()
        assert by_row(await rejections(accounts, again["id"], clerk)) == {2: "EMPLOYER_ALREADY_REGISTERED"}
        with Session(engine_of(accounts)) as session:
            status = dict(session.execute(select(Employer.uscc, Employer.status)).all())
        assert status == {make_uscc(1): "active", make_uscc(4): "deregistered"}
        [imported] = outbox(accounts, "accounts.employers.imported.v1")
        assert {e["uscc"] for e in imported["employers"]} == {make_uscc(1), make_uscc(4)}
        [changed] = outbox(accounts, "accounts.employer.status_changed.v1")
        assert (changed["uscc"], changed["status"]) == (make_uscc(4), "deregistered")


async def test_enrolments_follow_the_enrolment_rules(start_service, auth):
    city = auth("agency_clerk", region=CITY)
    clerk = auth("agency_clerk", region=REGION)
    async with start_service("accounts") as accounts:
        await import_registry(accounts, city)
        rows = [
            [cid(1), "PEN_EMP", make_uscc(1), "202001", "", ""],              # 2 good
            [cid(1), "失业保险", make_uscc(1), "2020-01", "", "参保缴费"],      # 3 good (Chinese fund name)
            [cid(2), "UNEMP", make_uscc(2), "202001", "", ""],                # 4 deregistered employer
            [cid(3), "PEN_RES", make_uscc(1), "202001", "", ""],              # 5 residents' pension with an employer
            [cid(4), "PEN_EMP", "", "202001", "", ""],                        # 6 employee fund without employer
            [cid(99), "PEN_EMP", make_uscc(1), "202001", "", ""],  # 7 unknown person
            [cid(1), "PEN_RES", "", "202101", "", ""],                        # 8 second active pension
            [cid(5), "MEDICAL", make_uscc(1), "202001", "", ""],              # 9 unknown fund
            [cid(5), "INJURY", make_uscc(3), "202001", "", ""],               # 10 employer in another district
            [cid(5), "INJURY", make_uscc(1), "202013", "", ""],               # 11 no such month
            [cid(5), "INJURY", make_uscc(1), "202005", "202001", ""],         # 12 ends before it starts
            [cid(1), "PEN_EMP", make_uscc(1), "202001", "", ""],              # 13 duplicate of row 2
            [cid(6), "PEN_EMP", make_uscc(9), "202001", "", ""],              # 14 unknown employer
            [cid(2), "UNEMP", make_uscc(2), "201001", "201912", "终止缴费"],   # 15 history at that employer: fine
            [cid(5), "INJURY", make_uscc(1), "202001", "", "终止缴费"],        # 16 stopped without an end
            [cid(5), "UNEMP", make_uscc(1), "201501", "201812", ""],          # 17 good (stopped: has an end)
            [cid(5), "UNEMP", make_uscc(1), "201801", "", ""],                # 18 overlaps row 17 (same fund)
        ]
        job = (await upload(accounts, "enrolments", csv_bytes(ENROLMENT_HEADER, rows), clerk)).json()
        assert by_row(await rejections(accounts, job["id"], clerk)) == {
            4: "EMPLOYER_NOT_ACTIVE", 5: "EMPLOYER_NOT_ALLOWED", 6: "EMPLOYER_REQUIRED", 7: "PERSON_NOT_FOUND",
            8: "DUPLICATE_PENSION", 9: "UNKNOWN_FUND", 10: "OUT_OF_REGION", 11: "INVALID_PERIOD",
            12: "PERIOD_RANGE_INVALID", 13: "DUPLICATE_IN_FILE", 14: "EMPLOYER_NOT_FOUND", 16: "END_PERIOD_REQUIRED",
            18: "ENROLMENT_PERIOD_OVERLAP",
        }
        assert (job["accepted_rows"], job["rejected_rows"]) == (4, 13)
        items = await rejections(accounts, job["id"], clerk)
        assert "已注销" in next(r["message"] for r in items if r["row_no"] == 4)

        with Session(engine_of(accounts)) as session:
            stored = list(session.execute(select(Enrolment)).scalars())
        assert sorted((e.fund, e.status, e.end_period) for e in stored) == [
            ("PEN_EMP", "active", None), ("UNEMP", "active", None), ("UNEMP", "stopped", 201812),
            ("UNEMP", "stopped", 201912)]
        assert {e.fund_group for e in stored if e.fund == "PEN_EMP"} == {"PENSION"}
        [event] = outbox(accounts, "accounts.enrolments.imported.v1")
        assert len(event["enrolments"]) == 4

        # The same file again: everything already there or still refused.
        again = (await upload(accounts, "enrolments", csv_bytes(ENROLMENT_HEADER, rows[:2]), clerk)).json()
        assert by_row(await rejections(accounts, again["id"], clerk)) == {
            2: "ENROLMENT_ALREADY_EXISTS", 3: "ENROLMENT_ALREADY_EXISTS"}


async def test_overlapping_pension_history_is_stored_and_reported(start_service, auth):
    city = auth("agency_clerk", region=CITY)
    clerk = auth("agency_clerk", region=REGION)
    async with start_service("accounts") as accounts:
        await import_registry(accounts, city)
        first = [[cid(7), "PEN_GOV", make_uscc(1), "200001", "200912", "终止缴费"]]
        await upload(accounts, "enrolments", csv_bytes(ENROLMENT_HEADER, first), clerk)
        rows = [
            [cid(7), "PEN_EMP", make_uscc(2), "200801", "201512", "终止缴费"],  # 2: overlaps the stored PEN_GOV
            [cid(7), "PEN_RES", "", "201501", "", "参保缴费"],                  # 3: overlaps row 2 in 2015
            [cid(6), "PEN_EMP", make_uscc(1), "201001", "201212", ""],          # 4: no overlap
        ]
        response = await upload(accounts, "enrolments", csv_bytes(ENROLMENT_HEADER, rows), clerk, mode="all_or_nothing")
        job = response.json()
        assert (job["status"], job["accepted_rows"], job["rejected_rows"], job["reported_overlaps"]) == (
            "completed", 3, 0, 2)
        assert await rejections(accounts, job["id"], clerk) == []
        overlaps = (await accounts.get(f"/imports/{job['id']}/overlaps", headers=clerk)).json()["items"]
        assert [(o["row_no"], o["code"]) for o in overlaps] == [(2, "DUPLICATE_ENROLMENT"), (3, "DUPLICATE_ENROLMENT")]
        assert "重叠" in overlaps[0]["message"] and overlaps[0]["raw"]["overlap_from"] == 200801

        events = outbox(accounts, "accounts.enrolment.duplicate_found.v1")
        assert sorted((e["overlap_from"], e["overlap_to"], tuple(e["funds"])) for e in events) == [
            (200801, 200912, ("PEN_GOV", "PEN_EMP")), (201501, 201512, ("PEN_EMP", "PEN_RES"))]
        assert all(e["citizen_id"] == cid(7) and e["import_job_id"] == job["id"] for e in events)
        with Session(engine_of(accounts)) as session:
            assert session.execute(select(func.count()).select_from(Enrolment)).scalar_one() == 4
            # Findings are not rejections.
            codes = session.execute(select(ImportRejection.code).where(ImportRejection.job_id == job["id"])).scalars()
            assert set(codes) == {"DUPLICATE_ENROLMENT"}


async def test_all_or_nothing_enrolments_report_every_bad_row_and_store_nothing(start_service, auth):
    city = auth("agency_clerk", region=CITY)
    async with start_service("accounts") as accounts:
        await import_registry(accounts, city)
        good = [[cid(1), "PEN_EMP", make_uscc(1), "202001", "", ""]]
        ok = (await upload(accounts, "enrolments", csv_bytes(ENROLMENT_HEADER, good), city)).json()
        assert ok["accepted_rows"] == 1
        rows = [
            [cid(2), "PEN_EMP", make_uscc(1), "202001", "", ""],
            [cid(3), "UNEMP", make_uscc(2), "202001", "", ""],        # deregistered employer
            [cid(1), "PEN_GOV", make_uscc(1), "202101", "", ""],      # already in PEN_EMP
            [cid(4), "PEN_EMP", make_uscc(1), "201001", "201212", ""],
            [cid(4), "PEN_GOV", make_uscc(1), "201101", "201312", ""],  # overlap: not a bad row, but not stored
        ]
        job = (await upload(accounts, "enrolments", csv_bytes(ENROLMENT_HEADER, rows), city, mode="all_or_nothing")).json()
        assert (job["status"], job["accepted_rows"], job["rejected_rows"], job["reported_overlaps"]) == (
            "rejected", 0, 2, 0)
        assert by_row(await rejections(accounts, job["id"], city)) == {3: "EMPLOYER_NOT_ACTIVE", 4: "DUPLICATE_PENSION"}
        assert count(accounts, Enrolment) == 1
        assert outbox(accounts, "accounts.enrolment.duplicate_found.v1") == []
        assert len(outbox(accounts, "accounts.enrolments.imported.v1")) == 1


async def test_audit_detail_names_the_stored_rows(start_service, auth):
    clerk = auth("agency_clerk", region=REGION, subject="clerk.wang")
    async with start_service("accounts") as accounts:
        job = (await upload(accounts, "persons", csv_bytes(PERSON_HEADER, [person(1), person(2)]), clerk)).json()
        with Session(engine_of(accounts)) as session:
            entries = list(session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars())
            ids = set(session.execute(select(Person.id)).scalars())
        stored = [e for e in entries if e.action == "import.persons.stored"]
        assert len(stored) == 1 and stored[0].entity_id == job["id"] and stored[0].actor_id == "clerk.wang"
        assert set(json.loads(stored[0].detail)["person_ids"]) == ids
        assert (await accounts.get("/audit/verify", headers=auth("internal_auditor"))).json()["ok"] is True


async def test_a_row_stored_concurrently_between_check_and_insert_is_reported_not_lost(start_service, auth, monkeypatch):
    """all_or_nothing checks everything, then inserts: a concurrent registration in between breaks the unique
    constraint, and the import checks again (reporting the row) instead of failing."""
    from services.accounts.imports import service as import_service

    clerk = auth("agency_clerk", region=REGION)
    original = import_service.ImportRun.store
    raced = []

    def store_after_a_concurrent_registration(self, session, result, chunk_no):  # noqa: ANN001, ANN202
        if not raced:
            raced.append(True)
            with Session(self.engine) as other:
                row = dict(result.rows[1], id="concurrent-person", name="并发登记")
                other.execute(Person.__table__.insert(), [row])
                other.commit()
        return original(self, session, result, chunk_no)

    monkeypatch.setattr(import_service.ImportRun, "store", store_after_a_concurrent_registration)
    async with start_service("accounts") as accounts:
        data = csv_bytes(PERSON_HEADER, [person(1), person(2), person(3)])
        job = (await upload(accounts, "persons", data, clerk, mode="all_or_nothing")).json()
        assert (job["status"], job["accepted_rows"], job["rejected_rows"]) == ("rejected", 0, 1)
        assert by_row(await rejections(accounts, job["id"], clerk)) == {3: "PERSON_ALREADY_REGISTERED"}
        with Session(engine_of(accounts)) as session:
            assert list(session.execute(select(Person.name)).scalars()) == ["并发登记"]
