"""On-site inspections (001 第八条、第十一条; 000 三(二)): plan → notice at least 3 days ahead → team of at least
2 → findings with amounts → feedback letter with a rectification deadline per finding → report; the yearly
programme's ≥ 20 % sample of lower-level agencies, reproducible from its recorded seed."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlmodel import Session

from services.kernel import clock
from services.kernel.models import OutboxMessage
from services.oversight.inspections.programme import draw_sample, rank_key, sample_size

TODAY = clock.china_today()
TEAM = [{"inspector_id": "officer.wang", "name": "王监督", "leader": True},
        {"inspector_id": "officer.li", "name": "李监督"}]


def day(offset: int) -> str:
    return (TODAY + timedelta(days=offset)).isoformat()


def plan(**overrides) -> dict:
    body = {"target_unit": "某区社会保险事业管理局", "target_code": "AG-150102", "target_level": "lower_level",
            "scope": "2025 年度养老保险待遇发放、基金收支与银行账户管理", "planned_on": day(-10), "members": TEAM}
    body.update(overrides)
    return body


async def planned(client, officer, **overrides) -> dict:  # noqa: ANN001
    r = await client.post("/inspections", json=plan(**overrides), headers=officer)
    assert r.status_code == 201, r.text
    return r.json()


async def post(client, officer, path: str, body: dict, expected: int = 200) -> dict:  # noqa: ANN001
    r = await client.post(path, json=body, headers=officer)
    assert r.status_code == expected, r.text
    return r.json()


# -- the procedure ---------------------------------------------------------------------------------------------------


async def test_plan_notice_team_findings_feedback_letter_and_report(start_service, auth):
    # 001 第十一条(一)、第十一条(三)、第十一条(四): notice, feedback letter with deadlines, report.
    officer = auth("oversight_officer", subject="officer.wang")
    auditor = auth("internal_auditor")
    async with start_service("oversight") as client:
        inspection = await planned(client, officer)
        iid = inspection["id"]
        assert inspection["status"] == "planned" and len(inspection["members"]) == 2
        # Nothing is recorded before the unit is notified.
        r = await client.post(f"/inspections/{iid}/findings", json={"title": "x", "description": "x", "amount": "1"},
                              headers=officer)
        assert r.status_code == 409 and r.json()["error"]["code"] == "INVALID_INSPECTION_STATUS"
        notified = await post(client, officer, f"/inspections/{iid}/notification",
                              {"notified_on": day(-14), "notice_ref": "监督通知〔2026〕3号"})
        assert notified["status"] == "notified" and notified["notified_on"] == day(-14)

        first = await post(client, officer, f"/inspections/{iid}/findings", {
            "title": "死亡人员冒领养老金未追回", "description": "3 名已死亡人员继续领取待遇 14 个月。", "fund": "PEN_EMP",
            "amount": "85432.10"}, 201)
        second = await post(client, officer, f"/inspections/{iid}/findings", {
            "title": "支出户向个人账户转账", "description": "支出户 2 笔转入个人账户。", "amount": "12000.05"}, 201)
        assert (first["seq"], second["seq"]) == (1, 2)
        shown = (await client.get(f"/inspections/{iid}", headers=auditor)).json()
        assert shown["status"] == "inspecting" and shown["findings_amount"] == "97432.15"

        # The letter must give every finding a deadline after its own date.
        letter = {"letter_no": "问题反馈函〔2026〕5号", "issued_on": day(-3), "oral_feedback_on": day(-8),
                  "requirements": "逐条整改并报送整改情况",
                  "deadlines": [{"finding_id": first["id"], "rectify_by": day(27)}]}
        r = await client.post(f"/inspections/{iid}/feedback-letter", json=letter, headers=officer)
        assert r.status_code == 422 and r.json()["error"]["code"] == "DEADLINE_MISSING"
        assert r.json()["error"]["details"] == {"missing_seq": [2]}
        bad = {**letter, "deadlines": [{"finding_id": first["id"], "rectify_by": day(27)},
                                       {"finding_id": second["id"], "rectify_by": day(-3)}]}
        r = await client.post(f"/inspections/{iid}/feedback-letter", json=bad, headers=officer)
        assert r.status_code == 422 and r.json()["error"]["code"] == "DEADLINE_NOT_AFTER_LETTER"
        # A report before the letter is refused when there are findings.
        r = await client.post(f"/inspections/{iid}/report", json={"reported_on": day(-1), "summary": "x"},
                              headers=officer)
        assert r.status_code == 409
        letter["deadlines"].append({"finding_id": second["id"], "rectify_by": day(-1)})
        issued = await post(client, officer, f"/inspections/{iid}/feedback-letter", letter)
        assert issued["status"] == "feedback_issued" and issued["letter_no"] == "问题反馈函〔2026〕5号"
        deadlines = {f["seq"]: (f["rectify_by"], f["rectification_overdue"]) for f in issued["findings"]}
        assert deadlines == {1: (day(27), False), 2: (day(-1), True)}

        fixed = await post(client, officer, f"/inspections/{iid}/findings/{second['id']}/rectified",
                           {"rectified_on": day(0), "note": "已追回并关闭对私转账权限"})
        assert fixed["rectified_on"] == day(0) and not fixed["rectification_overdue"]
        report = await post(client, officer, f"/inspections/{iid}/report",
                            {"reported_on": day(0), "summary": "发现问题 2 个，涉及资金 97 432.15 元。",
                             "reported_to_higher": True})
        assert report["status"] == "reported" and report["reported_to_higher"]

        with Session(client.app.state.engine) as session:
            events = {m.event_type: json.loads(m.envelope)["data"]
                      for m in session.execute(select(OutboxMessage)).scalars()}
        assert events["oversight.inspection.feedback_issued.v1"]["amount_fen"] == 9_743_215
        assert events["oversight.inspection.reported.v1"]["findings"] == 2
        entries = (await client.get("/audit/entries", params={"entity_id": iid}, headers=auditor)).json()
        assert [e["action"] for e in entries] == [
            "inspection.planned", "inspection.notified", "inspection.finding_recorded",
            "inspection.finding_recorded", "inspection.feedback_issued", "inspection.finding_rectified",
            "inspection.reported"]
        assert (await client.post("/inspections", json=plan(), headers=auditor)).status_code == 403

        # The letter number is unique; an inspection without findings is reported without a letter.
        other = await planned(client, officer, target_code="AG-150103")
        await post(client, officer, f"/inspections/{other['id']}/notification", {"notified_on": day(-13)})
        quiet = await post(client, officer, f"/inspections/{other['id']}/report",
                           {"reported_on": day(0), "summary": "未发现问题"})
        assert quiet["status"] == "reported" and quiet["letter_no"] is None


async def test_notice_less_than_three_days_ahead_is_refused(start_service, auth):
    # 001 第十一条(一): the inspected unit is notified at least 3 days ahead.
    officer = auth("oversight_officer")
    async with start_service("oversight") as client:
        soon = await planned(client, officer, planned_on=day(2))
        r = await client.post(f"/inspections/{soon['id']}/notification", json={"notified_on": day(0)}, headers=officer)
        assert r.status_code == 409 and r.json()["error"]["code"] == "NOTICE_TOO_LATE"
        assert r.json()["error"]["details"]["days_ahead"] == 2
        same_day = await planned(client, officer, planned_on=day(0))
        r = await client.post(f"/inspections/{same_day['id']}/notification", json={"notified_on": day(0)},
                              headers=officer)
        assert r.status_code == 409
        # A notice dated in the future is not a notice given.
        r = await client.post(f"/inspections/{soon['id']}/notification", json={"notified_on": day(5)}, headers=officer)
        assert r.status_code == 422 and r.json()["error"]["code"] == "DATE_IN_FUTURE"

        # Exactly three days ahead is enough; moving the date closer to the notice withdraws it.
        ok = await planned(client, officer, planned_on=day(3))
        notified = await post(client, officer, f"/inspections/{ok['id']}/notification", {"notified_on": day(0)})
        assert notified["status"] == "notified"
        moved = await post(client, officer, f"/inspections/{ok['id']}/reschedule",
                           {"planned_on": day(1), "reason": "被监督单位负责人出差"})
        assert moved["status"] == "planned" and moved["notified_on"] is None
        # Rescheduling far enough out allows a new notice.
        await post(client, officer, f"/inspections/{soon['id']}/reschedule", {"planned_on": day(10), "reason": "改期"})
        assert (await post(client, officer, f"/inspections/{soon['id']}/notification",
                           {"notified_on": day(0)}))["status"] == "notified"


async def test_an_empty_or_blank_programme_id_is_an_unknown_programme_not_a_crash(start_service, auth):
    """``"programme_id": ""`` (or blanks, stripped to "") is an unknown programme, refused as such, not a foreign-key
    failure."""
    officer = auth("oversight_officer")
    async with start_service("oversight") as client:
        for blank in ("", "   "):
            r = await client.post("/inspections", json=plan(programme_id=blank), headers=officer)
            assert r.status_code == 404 and r.json()["error"]["code"] == "PROGRAMME_NOT_FOUND", r.text


async def test_a_team_of_fewer_than_two_inspectors_is_refused(start_service, auth):
    officer = auth("oversight_officer")
    async with start_service("oversight") as client:
        r = await client.post("/inspections", json=plan(members=TEAM[:1]), headers=officer)
        assert r.status_code == 422 and r.json()["error"]["code"] == "TEAM_TOO_SMALL"
        # The same inspector twice is one inspector.
        r = await client.post("/inspections", json=plan(members=[TEAM[0], TEAM[0]]), headers=officer)
        assert r.status_code == 422 and r.json()["error"]["code"] == "TEAM_TOO_SMALL"
        r = await client.post("/inspections", json=plan(members=[TEAM[0], {**TEAM[1], "leader": True}]),
                              headers=officer)
        assert r.status_code == 422 and r.json()["error"]["code"] == "MORE_THAN_ONE_LEADER"

        without = await planned(client, officer, members=None)
        assert without["members"] == []
        await post(client, officer, f"/inspections/{without['id']}/notification", {"notified_on": day(-14)})
        r = await client.post(f"/inspections/{without['id']}/findings",
                              json={"title": "x", "description": "x", "amount": "10.00"}, headers=officer)
        assert r.status_code == 409 and r.json()["error"]["code"] == "TEAM_REQUIRED"
        r = await client.put(f"/inspections/{without['id']}/team", json={"members": TEAM[:1]}, headers=officer)
        assert r.status_code == 422 and r.json()["error"]["code"] == "TEAM_TOO_SMALL"
        team = await client.put(f"/inspections/{without['id']}/team", json={"members": TEAM}, headers=officer)
        assert team.status_code == 200 and {m["inspector_id"] for m in team.json()["members"]} == {"officer.wang",
                                                                                                   "officer.li"}
        await post(client, officer, f"/inspections/{without['id']}/findings",
                   {"title": "x", "description": "x", "amount": "10.00"}, 201)


# -- the yearly programme --------------------------------------------------------------------------------------------


def agencies(lower: int) -> list[dict]:
    return [{"code": "AG-150100", "name": "市社会保险事业管理局", "level": "same_level"}] + [
        {"code": f"AG-1501{n:02d}", "name": f"第{n}区社会保险事业管理局", "level": "lower_level"}
        for n in range(1, lower + 1)]


@pytest.mark.unit
def test_sample_is_at_least_a_fifth_rounded_up_and_depends_only_on_seed_and_codes():
    assert [sample_size(n) for n in (0, 1, 4, 5, 6, 10, 11, 23)] == [0, 1, 1, 1, 2, 2, 3, 5]
    assert sample_size(11, Decimal("0.5")) == 6
    codes = [a["code"] for a in agencies(11) if a["level"] == "lower_level"]
    sample = draw_sample("seed-of-2026", codes)
    assert len(sample) == 3 and set(sample) <= set(codes)
    assert draw_sample("seed-of-2026", list(reversed(codes))) == sample  # order of listing does not matter
    assert sample == sorted(codes, key=lambda c: rank_key("seed-of-2026", c))[:3]
    assert {tuple(draw_sample(f"seed-{i}", codes)) for i in range(20)} != {tuple(sample)}  # the seed decides


async def test_yearly_programme_samples_lower_level_agencies_reproducibly_from_its_seed(start_service, auth):
    officer = auth("oversight_officer", subject="officer.wang")
    auditor = auth("internal_auditor")
    async with start_service("oversight") as client:
        listed = agencies(11)
        created = await post(client, officer, "/inspections/programmes",
                             {"year": TODAY.year, "agencies": listed, "seed": "a1b2c3d4e5f6"}, 201)
        assert created["seed"] == "a1b2c3d4e5f6" and created["algorithm"] == "hmac-sha256-rank-v1"
        assert created["same_level"] == ["AG-150100"]
        assert created["lower_level_count"] == 11 and created["sample_size"] == 3 == len(created["sample"])
        lower_codes = [a["code"] for a in listed if a["level"] == "lower_level"]
        assert created["sample"] == draw_sample("a1b2c3d4e5f6", lower_codes)  # re-derived from the recorded seed
        selected = {a["code"] for a in created["agencies"] if a["selected"]}
        assert selected == {"AG-150100", *created["sample"]}

        verified = (await client.get(f"/inspections/programmes/{created['id']}/verify", headers=auditor)).json()
        assert verified["matches"] and verified["derived_sample"] == created["sample"]

        r = await client.post("/inspections/programmes", json={"year": TODAY.year, "agencies": listed},
                              headers=officer)
        assert r.status_code == 409 and r.json()["error"]["code"] == "PROGRAMME_EXISTS"
        # The same seed and agencies, listed in another order, give the same sample in another year.
        again = await post(client, officer, "/inspections/programmes",
                           {"year": TODAY.year + 1, "agencies": list(reversed(listed)), "seed": "a1b2c3d4e5f6"}, 201)
        assert again["sample"] == created["sample"]
        # Without a seed one is generated, recorded, and re-derives the same sample; a higher rate samples more.
        generated = await post(client, officer, "/inspections/programmes",
                               {"year": TODAY.year + 2, "agencies": listed, "sample_rate": "0.5"}, 201)
        assert len(generated["seed"]) >= 16 and generated["sample_size"] == 6
        assert generated["sample"] == draw_sample(generated["seed"], lower_codes, Decimal("0.5"))

        for body, code in (({"year": 2031, "agencies": listed, "sample_rate": "0.19"}, "SAMPLE_RATE_TOO_LOW"),
                           ({"year": 2031, "agencies": listed[1:]}, "SAME_LEVEL_REQUIRED"),
                           ({"year": 2031, "agencies": listed + listed[-1:]}, "DUPLICATE_AGENCY")):
            r = await client.post("/inspections/programmes", json=body, headers=officer)
            assert r.status_code == 422 and r.json()["error"]["code"] == code

        # Inspections of the programme: the same-level agency and the sampled ones, not the others.
        unsampled = next(c for c in lower_codes if c not in created["sample"])
        in_year = f"{TODAY.year}-12-01"
        r = await client.post("/inspections", headers=officer, json=plan(
            programme_id=created["id"], target_code=unsampled, planned_on=in_year))
        assert r.status_code == 409 and r.json()["error"]["code"] == "NOT_IN_PROGRAMME"
        r = await client.post("/inspections", headers=officer, json=plan(
            programme_id=created["id"], target_code=created["sample"][0], planned_on=f"{TODAY.year + 1}-01-05"))
        assert r.status_code == 422 and r.json()["error"]["code"] == "OUTSIDE_PROGRAMME_YEAR"
        sampled = await planned(client, officer, programme_id=created["id"], target_code=created["sample"][0],
                                planned_on=in_year)
        await planned(client, officer, programme_id=created["id"], target_code="AG-150100", target_level="same_level",
                      target_unit="市社会保险事业管理局", planned_on=in_year)
        coverage = (await client.get(f"/inspections/programmes/{created['id']}", headers=auditor)).json()
        by_code = {a["code"]: a for a in coverage["agencies"]}
        assert by_code[created["sample"][0]]["inspections"] == [sampled["id"]]
        assert by_code["AG-150100"]["inspections"] and not by_code["AG-150100"]["inspected"]
        years = [p["year"] for p in (await client.get("/inspections/programmes", headers=auditor)).json()]
        assert years == [TODAY.year, TODAY.year + 1, TODAY.year + 2]
