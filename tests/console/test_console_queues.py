"""The console's cross-person queues and the claim's 退回, without a browser, on the package's platform (conftest.py):
the corrections waiting for a second person, listed across persons (filtered on the server), decided from the queue
(a refusal in the API's words, an approval taking the correction out of the queue); a claim returned by the reviewer
with its reason, found by the clerk among the returned claims, corrected and resubmitted (a refusal shown first)."""

import asyncio
import re
import time

import httpx
import pytest

from services.kernel.clock import china_today
from tests.chaos.month import DISTRICT, citizen_id, uscc
from tests.support.benefits import approved_benefit_parameters
from tests.support.console import api_headers, console_sign_in, csrf_of

pytestmark = pytest.mark.once
TIMEOUT = 180.0
QUEUE = "/console/agency/corrections"


async def test_the_corrections_queue_lists_every_persons_requests_and_decides_them(platform):
    clerk_headers = await api_headers(platform, "agency_clerk")
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as api:
        requested = []
        for serial, name in ((961, "队列测试甲"), (962, "队列测试乙")):
            person = await api.post("/api/accounts/persons", headers=clerk_headers,
                                    json={"citizen_id": citizen_id(serial), "name": name, "region": DISTRICT})
            assert person.status_code == 201, person.text
            correction = await api.post(f"/api/accounts/persons/{person.json()['id']}/life-status-corrections",
                                        headers=clerk_headers, json={"new_status": "deceased",
                                                                     "death_date": "2026-09-01",
                                                                     "reason": "民政部门火化信息核实"})
            assert correction.status_code == 201, correction.text
            requested.append((person.json()["id"], correction.json()["id"]))

    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as clerk:
        await console_sign_in(clerk, *platform.user_of("agency_clerk"))
        queue = await clerk.get(QUEUE)
        assert queue.status_code == 200 and "队列测试甲" in queue.text and "队列测试乙" in queue.text
        assert 'id="queue-approve-' not in queue.text  # the requester's role decides nothing
        mine_left_out = await clerk.get(QUEUE, params={"exclude_mine": "true"})
        assert "队列测试甲" not in mine_left_out.text

    (first_person, first), (_, second) = requested
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as reviewer:
        await console_sign_in(reviewer, *platform.user_of("agency_reviewer"))
        queue = await reviewer.get(QUEUE)
        assert f'id="queue-approve-{first}"' in queue.text and f'id="queue-approve-{second}"' in queue.text
        assert f'href="/console/agency/persons/{first_person}#person-corrections"' in queue.text
        action = re.search(rf'action="(/console/agency/corrections/[\w-]+/{first}/approve)"', queue.text).group(1)
        refused = await reviewer.post(action.replace("/approve", "/reject"),
                                      data={"csrf_token": csrf_of(queue.text), "reason": ""})
        assert refused.status_code == 422 and 'id="corrections-error"' in refused.text  # a rejection needs a reason
        assert "DECISION_REASON_REQUIRED" in re.search(r'id="corrections-error">([^<]+)<', refused.text).group(1)
        approved = await reviewer.post(action, data={"csrf_token": csrf_of(queue.text), "reason": "材料齐全"})
        assert approved.status_code == 303 and approved.headers["location"] == QUEUE, approved.text[:500]
        queue = await reviewer.get(QUEUE)
        assert f'id="queue-approve-{first}"' not in queue.text and f'id="queue-approve-{second}"' in queue.text
        decided = await reviewer.get(QUEUE, params={"status": "approved"})
        assert "队列测试甲" in decided.text and "队列测试乙" not in decided.text
        workbook = await reviewer.get(QUEUE + ".xlsx", params={"status": "approved"})
        assert workbook.status_code == 200 and workbook.content[:2] == b"PK"


async def _claim_in_review(platform) -> str:  # noqa: ANN001
    """A one-off claim of a person registered and enrolled here, submitted by the clerk through the API."""
    headers = {role: await api_headers(platform, role) for role in ("agency_clerk", "accountant", "agency_approver")}
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as api:
        benefits = httpx.AsyncClient(base_url=platform.gateway_url + "/api/benefits", timeout=TIMEOUT)
        async with benefits:
            await approved_benefit_parameters(benefits, lambda role, **_: headers[role], valid_from=202601)
        clerk = headers["agency_clerk"]
        employer = await api.post("/api/accounts/employers", headers=clerk, json={
            "uscc": uscc(971), "name": "退回测试有限公司", "region": DISTRICT, "unit_type": "enterprise",
            "industry_risk_class": 2})
        assert employer.status_code == 201, employer.text
        person = await api.post("/api/accounts/persons", headers=clerk,
                                json={"citizen_id": citizen_id(971), "name": "退回测试丁", "region": DISTRICT})
        assert person.status_code == 201, person.text
        person_id = person.json()["id"]
        enrolment = await api.post("/api/accounts/enrolments", headers=clerk, json={
            "person_id": person_id, "fund": "PEN_EMP", "employer_id": employer.json()["id"], "start_period": 202601})
        assert enrolment.status_code == 201, enrolment.text
        deadline = time.monotonic() + 60
        while (await api.get(f"/api/benefits/registry/persons/{person_id}", headers=clerk)).status_code != 200:
            assert time.monotonic() < deadline, "benefits never learnt of the person"
            await asyncio.sleep(0.2)  # benefits learns of the person from accounts' event
        today = china_today()
        claim = await api.post("/api/benefits/claims", headers=clerk, json={
            "kind": "one_off", "fund": "PEN_EMP", "person_id": person_id,
            "effective_period": today.year * 100 + today.month, "one_off_amount": "1500.00",
            "documents": [{"kind": "丧葬补助金申请表", "reference": "退回测试〔2026〕1号"}]})
        assert claim.status_code == 201 and claim.json()["status"] == "in_review", claim.text
        return claim.json()["id"]


async def test_a_claim_is_returned_to_the_clerk_corrected_and_resubmitted(platform):
    claim_id = await _claim_in_review(platform)
    url = f"/console/agency/claims/{claim_id}"
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as reviewer:
        await console_sign_in(reviewer, *platform.user_of("agency_reviewer"))
        page = await reviewer.get(url)
        assert 'id="return-form"' in page.text and 'value="previous_level"' not in page.text  # 初审: no level before
        refused = await reviewer.post(f"{url}/returns", data={"csrf_token": csrf_of(page.text), "to": "clerk",
                                                              "level": "first_review", "reason": " "})
        assert refused.status_code == 422 and 'id="claim-error"' in refused.text
        returned = await reviewer.post(f"{url}/returns", data={
            "csrf_token": csrf_of(page.text), "to": "clerk", "level": "first_review", "reason": "缺少死亡证明"})
        assert returned.status_code == 303, returned.text[:500]
        page = await reviewer.get(url)
        assert "已退回经办（待补正）" in page.text and 'id="decision-form"' not in page.text
        assert "缺少死亡证明" in re.search(r'id="claim-history">.*?</table>', page.text, re.S).group(0)

    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as clerk:
        await console_sign_in(clerk, *platform.user_of("agency_clerk"))
        queue = await clerk.get("/console/agency/claims")
        returned_queue = re.search(r'id="returned-table">.*?</table>', queue.text, re.S).group(0)
        assert f'data-returned="{claim_id}"' in returned_queue and "缺少死亡证明" in returned_queue
        page = await clerk.get(url)
        assert 'id="resubmit-form"' in page.text and 'id="return-form"' not in page.text
        refused = await clerk.post(f"{url}/resubmission", data={
            "csrf_token": csrf_of(page.text), "reason": "补充死亡证明", "document_kind": "死亡证明",
            "document_reference": "", "one_off_amount": "1500.005"})
        assert refused.status_code == 422 and 'id="claim-error"' in refused.text
        assert 'value="死亡证明"' in refused.text  # what was typed, kept
        resubmitted = await clerk.post(f"{url}/resubmission", data={
            "csrf_token": csrf_of(page.text), "reason": "补充死亡证明", "document_kind": "死亡证明",
            "document_reference": "医学死亡证明〔2026〕7号", "one_off_amount": ""})
        assert resubmitted.status_code == 303, resubmitted.text[:500]
        page = await clerk.get(url)
        assert 'id="claim-status">审核中' in page.text and "医学死亡证明〔2026〕7号" in page.text
        queue = await clerk.get("/console/agency/claims")
        assert f'data-returned="{claim_id}"' not in queue.text

    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as reviewer:
        await console_sign_in(reviewer, *platform.user_of("agency_reviewer"))
        queue = await reviewer.get("/console/agency/claims")
        assert f'data-claim="{claim_id}"' in queue.text  # back at 初审, the reviewer's again
