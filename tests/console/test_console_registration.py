"""The console's write screens, without a browser, on the package's platform (conftest.py): agency registration (a
person, an employer, an enrolment) with the API's own refusal shown beside the form and what was typed kept; the IT
administrator granting and revoking roles (a grant of incompatible duties refused in words, 001 第十六条) and
registering a system client whose secret is shown once."""

import re

import httpx
import pytest

from tests.chaos.month import DISTRICT, citizen_id, uscc
from tests.support.console import api_headers, console_sign_in, csrf_of

pytestmark = pytest.mark.once
TIMEOUT = 180.0


async def test_a_refused_registration_shows_the_apis_message_and_keeps_what_was_typed(platform):
    wrong = {"citizen_id": citizen_id(951)[:-1] + ("0" if citizen_id(951)[-1] != "0" else "1"),
             "name": "登记测试乙", "region": DISTRICT}
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as api:
        direct = await api.post("/api/accounts/persons", json=wrong, headers=await api_headers(platform, "agency_clerk"))
    assert direct.status_code == 422
    message = direct.json()["error"]["message"]

    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as clerk:
        await console_sign_in(clerk, *platform.user_of("agency_clerk"))
        page = await clerk.get("/console/agency/register")
        assert page.status_code == 200 and 'id="person-registration"' in page.text
        refused = await clerk.post("/console/agency/register/person",
                                   data={"csrf_token": csrf_of(page.text), **wrong, "phone": ""})
        assert refused.status_code == 422
        shown = re.search(r'id="person-registration-error">([^<]+)<', refused.text).group(1)
        assert message in shown
        assert f'value="{wrong["citizen_id"]}"' in refused.text and 'value="登记测试乙"' in refused.text

        person = await clerk.post("/console/agency/register/person", data={
            "csrf_token": csrf_of(page.text), "citizen_id": citizen_id(951), "name": "登记测试乙", "region": DISTRICT,
            "household_type": "urban", "sex": ""})
        assert person.status_code == 303, person.text[:500]
        person_url = person.headers["location"]
        assert re.fullmatch(r"/console/agency/persons/[\w-]+", person_url)
        assert "登记测试乙" in (await clerk.get(person_url)).text

        employer = await clerk.post("/console/agency/register/employer", data={
            "csrf_token": csrf_of(page.text), "uscc": uscc(951), "name": "登记测试有限公司", "region": DISTRICT,
            "unit_type": "enterprise", "industry_risk_class": "2"})
        assert employer.status_code == 303, employer.text[:500]
        employer_id = employer.headers["location"].rsplit("/", 1)[1]

        enrolment = await clerk.post("/console/agency/register/enrolment", data={
            "csrf_token": csrf_of(page.text), "person_id": person_url.rsplit("/", 1)[1], "fund": "PEN_EMP",
            "employer_id": employer_id, "start_period": "202601"})
        assert enrolment.status_code == 303 and enrolment.headers["location"] == person_url, enrolment.text[:500]
        enrolled = await clerk.get(person_url)
        assert employer_id in re.search(r'id="person-enrolments">.*?</table>', enrolled.text, re.S).group(0)

    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as reviewer:
        await console_sign_in(reviewer, *platform.user_of("agency_reviewer"))
        assert (await reviewer.get("/console/agency/register")).status_code == 403  # the clerk registers


async def test_a_grant_of_incompatible_duties_is_refused_in_words_and_a_role_is_revoked(platform):
    admin_headers = await api_headers(platform, "it_admin")
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as api:
        created = await api.post("/identity/users", headers=admin_headers, json={
            "username": "console_grantee", "display_name": "授权测试", "unit": "演示社保经办机构", "region": DISTRICT,
            "password": "Console-Grantee-2026!"})
        assert created.status_code == 201, created.text

    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as admin:
        await console_sign_in(admin, *platform.user_of("it_admin"))
        page = await admin.get("/console/admin/users")
        assert page.status_code == 200 and 'id="grant-console_grantee"' in page.text
        granted = await admin.post("/console/admin/users/console_grantee/roles", data={
            "csrf_token": csrf_of(page.text), "role": "agency_clerk", "reason": "任职文件 2026-01"})
        assert granted.status_code == 303, granted.text[:500]

        refused = await admin.post("/console/admin/users/console_grantee/roles", data={
            "csrf_token": csrf_of(page.text), "role": "cashier", "reason": "兼任出纳"})
        assert refused.status_code == 409, refused.status_code
        error = re.search(r'id="role-error">([^<]+)<', refused.text).group(1)
        assert "ROLE_CONFLICT" in error and "不能再授予" in error and "出纳" in error
        assert 'value="兼任出纳"' in refused.text  # what was typed, kept

        revoked = await admin.post("/console/admin/users/console_grantee/roles/agency_clerk/revoke", data={
            "csrf_token": csrf_of(page.text), "reason": "调离岗位"})
        assert revoked.status_code == 303, revoked.text[:500]
        after = await admin.get("/console/admin/users")
        assert 'id="revoke-console_grantee-agency_clerk"' not in after.text

        clients = await admin.get("/console/admin/clients")
        assert clients.status_code == 200
        made = await admin.post("/console/admin/clients", data={
            "csrf_token": csrf_of(clients.text), "client_id": "console_bank", "name": "测试银行", "role": "bank_system",
            "region": DISTRICT})
        assert made.status_code == 200 and 'id="client-secret"' in made.text, made.text[:500]
        secret = re.search(r'id="client-secret">([^<]+)<', made.text).group(1)
        listed = await admin.get("/console/admin/clients", params={"role": "bank_system"})
        assert 'id="client-secret"' not in listed.text and secret not in listed.text  # shown once, never listed
        assert "console_bank" in listed.text and "测试银行" in listed.text and "demo_tax" not in listed.text
        twice = await admin.post("/console/admin/clients", data={
            "csrf_token": csrf_of(clients.text), "client_id": "console_bank", "name": "又一家银行",
            "role": "bank_system", "region": DISTRICT})
        assert twice.status_code == 409 and "CLIENT_EXISTS" in twice.text and 'value="又一家银行"' in twice.text
        assert "console_bank" in twice.text  # the list, shown again beside the refused form
        workbook = await admin.get("/console/admin/clients.xlsx")
        assert workbook.status_code == 200 and secret.encode() not in workbook.content

    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as auditor:
        await console_sign_in(auditor, *platform.user_of("internal_auditor"))
        read_only = await auditor.get("/console/admin/users")
        assert read_only.status_code == 200 and "grant-console_grantee" not in read_only.text
        assert (await auditor.post("/console/admin/users/console_grantee/roles", data={
            "csrf_token": csrf_of(read_only.text), "role": "agency_clerk", "reason": "越权"})).status_code == 403
        client_list = await auditor.get("/console/admin/clients")
        assert client_list.status_code == 200 and "console_bank" in client_list.text
        assert 'id="client-form"' not in client_list.text  # the auditor reads and registers nothing
        assert (await auditor.post("/console/admin/clients", data={
            "csrf_token": csrf_of(client_list.text), "client_id": "auditor_bank", "name": "越权",
            "role": "bank_system", "region": DISTRICT})).status_code == 403


async def test_a_life_status_correction_waits_for_a_second_person_on_the_persons_page(platform):
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as api:
        person = await api.post("/api/accounts/persons", headers=await api_headers(platform, "agency_clerk"),
                                json={"citizen_id": citizen_id(952), "name": "更正测试丙", "region": DISTRICT})
        assert person.status_code == 201, person.text
    url = f"/console/agency/persons/{person.json()['id']}"

    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as clerk:
        await console_sign_in(clerk, *platform.user_of("agency_clerk"))
        page = await clerk.get(url)
        assert 'id="correction-form"' in page.text and 'id="person-corrections"' in page.text
        requested = await clerk.post(f"{url}/corrections", data={
            "csrf_token": csrf_of(page.text), "new_status": "deceased", "death_date": "2026-10-03",
            "reason": "民政部门火化信息核实", "evidence": "民火字〔2026〕12号"})
        assert requested.status_code == 303, requested.text[:500]
        page = await clerk.get(url)
        assert "待审核" in page.text and 'id="approve-' not in page.text  # not the requester's to decide

    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as reviewer:
        await console_sign_in(reviewer, *platform.user_of("agency_reviewer"))
        page = await reviewer.get(url)
        action = re.search(rf'action="({re.escape(url)}/corrections/[\w-]+/approve)"', page.text).group(1)
        refused = await reviewer.post(action.replace("/approve", "/reject"),
                                      data={"csrf_token": csrf_of(page.text), "reason": ""})
        assert refused.status_code == 422 and 'id="correction-error"' in refused.text  # a rejection needs a reason
        approved = await reviewer.post(action, data={"csrf_token": csrf_of(page.text), "reason": "材料齐全"})
        assert approved.status_code == 303, approved.text[:500]
        page = await reviewer.get(url)
        facts = re.search(r'id="person-facts">.*?</dl>', page.text, re.S).group(0)
        assert "已通过" in page.text and "死亡" in facts
