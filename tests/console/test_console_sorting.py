"""Sorting on the server through the console, without a browser, on the package's platform (conftest.py): a report
table's header is a link only for a column its list route sorts (the API's ``sort``, every page in order, not the
page shown), a key the API does not admit is never sent, and the cases list sorts by its columns the same way."""

import re
from datetime import date

import httpx
import pytest

from tests.support.console import api_headers, console_sign_in
from tests.support.registry import make_citizen_id

pytestmark = pytest.mark.once
TIMEOUT = 180.0


async def test_a_report_tables_headers_sort_through_the_api(platform):
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as api:
        clerk_api = await api_headers(platform, "agency_clerk")
        for serial, name in ((431, "服务端排序乙"), (432, "服务端排序丙"), (433, "服务端排序甲")):
            registered = await api.post("/api/accounts/persons", headers=clerk_api, json={
                "citizen_id": make_citizen_id(serial, born=date(1971, 2, 3)), "name": name,
                "region": "150102"})
            assert registered.status_code == 201, registered.text
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as clerk:
        await console_sign_in(clerk, *platform.user_of("agency_clerk"))
        page = await clerk.get("/console/agency/persons", params={"name": "服务端排序", "sort": "registered_at"})
        assert page.status_code == 200
        shown = re.findall(r'<a href="/console/agency/persons/[\w-]+">([^<]+)</a>', page.text)
        assert shown == ["服务端排序乙", "服务端排序丙", "服务端排序甲"]  # in the order registered
        assert 'aria-sort="ascending"' in page.text and "登记时间 ↑" in page.text
        assert re.search(r'<a href="[^"]*sort=-registered_at[^"]*"', page.text)  # the same column again: descending
        assert '<th scope="col">身份证号</th>' in page.text  # no API key for it: not a link
        ignored = await clerk.get("/console/agency/persons", params={"name": "服务端排序", "sort": "citizen_id"})
        assert ignored.status_code == 200  # never sent to the API (which would refuse it): the API's own order
        assert len(re.findall(r'<a href="/console/agency/persons/[\w-]+">服务端排序', ignored.text)) == 3

    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as officer:
        await console_sign_in(officer, *platform.user_of("oversight_officer"))
        page = await officer.get("/console/oversight/cases", params={"sort": "-severity", "open_only": "false"})
        assert page.status_code == 200 and "严重程度 ↓" in page.text and "按所选列排序" in page.text
        assert "sort=severity" in page.text  # the header offers the other direction
        severities = re.findall(r'<td class="severity-(\w+)">', page.text)
        assert severities == sorted(severities, reverse=True)
        unknown = await officer.get("/console/oversight/cases", params={"sort": "title"})
        assert unknown.status_code == 200 and "最新在前" in unknown.text
