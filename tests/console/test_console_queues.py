"""The console's cross-person queues and the claim's 退回, without a browser, on the package's platform (conftest.py):
the corrections waiting for a second person, listed across persons (filtered on the server), decided from the queue
(a refusal in the API's words, an approval taking the correction out of the queue)."""

import re

import httpx
import pytest

from tests.chaos.month import DISTRICT, citizen_id
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
