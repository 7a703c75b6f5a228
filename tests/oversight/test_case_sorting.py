"""The cases list sorted by the server (services.kernel.paging.SortKeys): by severity and by rule, ties by id, the
cursor carrying the key; 422 SORT_KEY_UNKNOWN for a key the list does not admit."""

from tests.support.registry import error_code

UNIT = "新城区社会保险事业管理局"


def case_body(n: int, severity: str, rule_id: str) -> dict:
    return {"rule_id": rule_id, "fact_key": f"{rule_id}:person-{n}:202601", "severity": severity,
            "subject_type": "person", "subject_id": f"person-{n}", "title": "排序测试", "details": {"n": n},
            "seed_clause": "001 第二十七条", "unit": UNIT, "region": "150102", "deadline_days": 15}


async def test_cases_sort_by_severity_and_rule_and_refuse_an_unknown_key(start_service, auth):
    officer = auth("oversight_officer", subject="officer.wang")
    async with start_service("oversight") as client:
        for n, (severity, rule) in enumerate((("high", "S02"), ("low", "S01"), ("high", "S01"), ("medium", "S03"))):
            response = await client.post("/cases", headers=officer, json=case_body(n, severity, rule))
            assert response.status_code == 201, response.text

        async def walk(sort: str) -> list[dict]:
            shown, cursor = [], None
            while True:
                params = {"sort": sort, "limit": 2, **({"after": cursor} if cursor else {})}
                response = await client.get("/cases", headers=officer, params=params)
                assert response.status_code == 200, response.text
                shown += response.json()["items"]
                cursor = response.json()["next_cursor"]
                if cursor is None:
                    return shown

        by_severity = await walk("severity")
        assert [c["severity"] for c in by_severity] == ["high", "high", "low", "medium"]
        assert by_severity[0]["id"] < by_severity[1]["id"]
        assert [c["id"] for c in await walk("-severity")] == [c["id"] for c in reversed(by_severity)]
        assert [c["rule_id"] for c in await walk("-rule_id")] == ["S03", "S02", "S01", "S01"]

        unknown = await client.get("/cases", headers=officer, params={"sort": "title"})
        assert unknown.status_code == 422 and error_code(unknown) == "SORT_KEY_UNKNOWN"
