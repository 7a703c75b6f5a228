"""Major-incident reports (000 三(五); 001 第三十一条): a major incident is due at the same-level and the
provincial supervisor by the 5th Chinese working day after discovery (holidays and make-up days from
chinese_calendar), late reports are marked, due and overdue lists, the half-yearly summary."""

from datetime import date, timedelta

import chinese_calendar
import pytest

from services.kernel import clock
from services.oversight.incidents.deadlines import working_day_deadline


def fifth_working_day_after(day: date) -> date:
    counted = 0
    while counted < 5:
        day += timedelta(days=1)
        counted += chinese_calendar.is_workday(day)
    return day


def incident(**overrides) -> dict:
    body = {"kind": "misappropriation", "title": "挪用失业保险基金", "description": "某区经办机构将基金借给企业周转。",
            "unit": "某区社会保险事业管理局", "region": "150102", "channel": "inspection", "discovered_on": "2026-09-29",
            "amount": "350000.00", "major": True}
    body.update(overrides)
    return body


async def record(client, officer, **overrides) -> dict:  # noqa: ANN001
    r = await client.post("/incidents", json=incident(**overrides), headers=officer)
    assert r.status_code == 201, r.text
    return r.json()


@pytest.mark.unit
def test_five_working_days_cross_the_national_day_holiday():
    discovered = date(2026, 9, 29)
    expected = fifth_working_day_after(discovered)
    assert expected.month == 10 and expected > date(2026, 10, 7)  # the holiday is skipped
    assert working_day_deadline(discovered) == (expected, None)
    assert expected == date(2026, 10, 12)  # 9-30, 10-8, 10-9, 10-10 (make-up Saturday), 10-12
    # An ordinary week: Monday → the next Monday.
    assert working_day_deadline(date(2026, 11, 2)) == (date(2026, 11, 9), None)
    # A year the calendar does not cover: unknown, never guessed.
    due, note = working_day_deadline(date(2099, 3, 2))
    assert due is None and "2099" in note


async def test_major_incident_deadline_late_marking_and_due_lists(start_service, auth):
    officer = auth("oversight_officer", subject="officer.sun")
    auditor = auth("internal_auditor")
    async with start_service("oversight") as client:
        major = await record(client, officer)
        expected = fifth_working_day_after(date(2026, 9, 29))
        assert major["due_on"] == expected.isoformat() and major["status"] in ("due", "overdue")
        assert major["kind_label"] == "挪用" and major["channel_label"] == "专项检查/现场监督"

        # As of the due day it is due; the day after, overdue.
        due = (await client.get("/incidents/due", params={"as_of": expected.isoformat()}, headers=auditor)).json()
        assert [i["id"] for i in due["due"]] == [major["id"]] and due["overdue"] == []
        after = (expected + timedelta(days=1)).isoformat()
        overdue = (await client.get("/incidents/due", params={"as_of": after}, headers=auditor)).json()
        assert [i["id"] for i in overdue["overdue"]] == [major["id"]] and overdue["overdue"][0]["days_overdue"] == 1

        # Same level on the due day (on time), provincial the next working day (late).
        r = await client.post(f"/incidents/{major['id']}/reports", headers=officer,
                              json={"level": "same_level", "reported_on": expected.isoformat(), "reference": "区监〔2026〕7号"})
        assert r.status_code == 200, r.text
        assert r.json()["same_level_late"] is False and r.json()["provincial_late"] is None
        assert r.json()["status"] == "overdue"  # the province has not been told and the due day has passed
        r = await client.post(f"/incidents/{major['id']}/reports", headers=officer,
                              json={"level": "provincial", "reported_on": "2026-10-13"})
        body = r.json()
        assert body["provincial_late"] is True and body["late"] and body["status"] == "reported"
        again = await client.post(f"/incidents/{major['id']}/reports", headers=officer,
                                  json={"level": "provincial", "reported_on": "2026-10-13"})
        assert again.status_code == 409 and again.json()["error"]["code"] == "ALREADY_REPORTED"
        listed = (await client.get("/incidents/due", params={"as_of": after}, headers=auditor)).json()
        assert listed["due"] == listed["overdue"] == []

        # A non-major incident has no 5-day deadline: it goes into the half-yearly summary.
        minor = await record(client, officer, major=False, kind="fraud", channel="whistleblowing", amount="8000.00")
        assert minor["due_on"] is None and minor["status"] == "half_yearly"
        # Upgraded later: the deadline still counts from discovery, so it is already overdue.
        upgraded = await client.post(f"/incidents/{minor['id']}/classification", headers=officer,
                                     json={"major": True, "reason": "涉及人数多，社会影响大"})
        assert upgraded.json()["due_on"] == expected.isoformat() and upgraded.json()["status"] == "overdue"

        # Refusals: report before discovery, dates in the future, unknown incident, auditors cannot write.
        r = await client.post(f"/incidents/{minor['id']}/reports", headers=officer,
                              json={"level": "same_level", "reported_on": "2026-09-28"})
        assert r.status_code == 422 and r.json()["error"]["code"] == "REPORTED_BEFORE_DISCOVERY"
        future = (clock.china_today() + timedelta(days=30)).isoformat()
        r = await client.post("/incidents", json=incident(discovered_on=future), headers=officer)
        assert r.status_code == 422 and r.json()["error"]["code"] == "DATE_IN_FUTURE"
        assert (await client.get("/incidents/nope", headers=auditor)).status_code == 404
        assert (await client.post("/incidents", json=incident(), headers=auditor)).status_code == 403
        assert (await client.get("/incidents", headers=auth("agency_clerk"))).status_code == 403
        r = await client.post("/incidents", json=incident(kind="embezzlement"), headers=officer)
        assert r.status_code == 422


async def test_half_yearly_summary_counts_amounts_and_late_reports(start_service, auth):
    officer = auth("oversight_officer")
    async with start_service("oversight") as client:
        h1_major = await record(client, officer, discovered_on="2026-03-02", amount="100000.00")  # due 2026-03-09
        h1_late = await record(client, officer, discovered_on="2026-04-01", kind="fraud", channel="audit",
                               amount="20000.50")
        h1_minor = await record(client, officer, discovered_on="2026-06-30", major=False, kind="diversion",
                                channel="media", amount="3000.00")
        await record(client, officer, discovered_on="2026-07-01", amount="999.99")  # second half
        await record(client, officer, discovered_on="2025-12-31", amount="1.00")  # previous year

        for level in ("same_level", "provincial"):
            r = await client.post(f"/incidents/{h1_major['id']}/reports", headers=officer,
                                  json={"level": level, "reported_on": "2026-03-09"})
            assert r.status_code == 200 and r.json()[f"{level}_late"] is False
        assert not r.json()["late"] and r.json()["status"] == "reported"
        deadline = fifth_working_day_after(date(2026, 4, 1))
        late_day = (deadline + timedelta(days=1)).isoformat()
        r = await client.post(f"/incidents/{h1_late['id']}/reports", headers=officer,
                              json={"level": "same_level", "reported_on": late_day})
        assert r.json()["same_level_late"] is True

        summary = await client.get("/incidents/summary", params={"year": 2026, "half": 1, "as_of": "2026-07-15"},
                                   headers=auth("internal_auditor"))
        assert summary.status_code == 200, summary.text
        s = summary.json()
        assert (s["period_from"], s["period_to"]) == ("2026-01-01", "2026-06-30")
        assert s["count"] == 3 and s["amount"] == "123000.50"
        assert s["major_count"] == 2 and s["major_amount"] == "120000.50"
        assert s["by_kind"]["misappropriation"] == {"count": 1, "amount": "100000.00"}
        assert s["by_kind"]["fraud"] == {"count": 1, "amount": "20000.50"}
        assert s["by_kind"]["diversion"] == {"count": 1, "amount": "3000.00"}
        assert s["by_channel"]["media"]["count"] == 1 and s["by_channel"]["court"]["count"] == 0
        assert [i["id"] for i in s["reported_late"]] == [h1_late["id"]]
        # h1_late reached the same level late and the province not at all: overdue as well.
        assert [i["id"] for i in s["overdue_unreported"]] == [h1_late["id"]]
        assert {i["id"] for i in s["incidents"]} == {h1_major["id"], h1_late["id"], h1_minor["id"]}

        second = (await client.get("/incidents/summary", params={"year": 2026, "half": 2},
                                   headers=officer)).json()
        assert second["count"] == 1 and second["amount"] == "999.99"
        r = await client.get("/incidents/summary", params={"year": 2026, "half": 3}, headers=officer)
        assert r.status_code == 422
        page = (await client.get("/incidents", params={"year": 2026, "half": 1, "major": "true"},
                                 headers=officer)).json()
        assert {i["id"] for i in page["items"]} == {h1_major["id"], h1_late["id"]}
