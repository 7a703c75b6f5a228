"""Oversight's case workflow and whistleblower reports, end to end through the gateway (accounts,
benefits and oversight under uvicorn, one real nats-server between them, real SQLite files).

1. **A class-4 case from real activity to closure (销号).** 王建军 and 赵立新 draw a monthly work-injury allowance
   (伤残津贴, 3 200.00 yuan, entered from the injury determination and decided at three levels — the cheapest honest
   monthly benefit: no 180 months of contribution history to build, unlike tests/e2e/test_benefits_flow.py's
   pension). 2026-07 and 2026-08 are paid through payroll, bank file and bank result. 王建军 died on 2026-07-20; the
   civil-affairs record arrives afterwards, so 2026-08 was paid after his death: oversight's S01 opens a case from
   the events (and the sweep finds the same fact again, an occurrence, no second case). The case is listed for its
   unit and area (and not for another district), investigated, classified as class 4 (不符合待遇领取条件) and put in the
   rectification ledger; closing is refused (FOLLOW_UP_INCOMPLETE) while benefits has not acted, and nobody can
   enter the benefits follow-up by hand. Benefits is down while the death record comes in (so its follow-up
   deterministically comes after the classification) and catches up from its durable consumers when it comes
   back: it suspends the allowance and issues a recovery notice for 2026-08, and oversight records both events as
   the case's confirmations. The unit submits its evidence, an officer closes the case after verifying, and the
   history shows every step with who and when; the rectification ledger lists it closed.
   赵立新 died on 2026-07-25, reported with benefits running: benefits' suspension and notice and oversight's S01 case
   come from the same accounts events at the same moment, in either order; classified, the case is confirmed by
   those events either way (cases/service.py ``confirmations_since`` counts a suspension recorded a moment before
   the case opened, so the case can be closed on events whichever came first).
   Meanwhile S11 (a business registered 45 days ago, not registered for social insurance) is found by the sweep,
   listed overdue, escalated with the S01 case (``as_of`` in the future), and dismissed as a false positive: the
   proposing officer cannot confirm it, a second officer does.
2. **A whistleblower report without an account** (see the test's docstring).
"""

import time
from contextlib import AsyncExitStack
from datetime import date, timedelta

from services.benefits.payroll import bankfile
from services.kernel.service_app import create_service_app, wait_idle
from services.kernel.clock import china_today as today
from sifund import services as catalogue
from tests.support.registry import make_card, make_citizen_id
from tests.support.exchange import partner_headers
from tests.support.benefits import benefit_document
from tests.support.apps import bearer
from tests.support.e2e import bank_headers
from tests.support.e2e import DISTRICT, eventually, uscc
from tests.support.gateway import gateway_client, serve

CITY = "150100"
OTHER_DISTRICT = "150103"  # 回民区
FUND = "INJURY"
JULY, AUGUST = 202607, 202608
DEATH_DATE = "2026-07-20"
MONTHLY, MONTHLY_FEN = "3200.00", 320_000
TWO = "6400.00"  # a run pays both

CLERK, REVIEWER_1, REVIEWER_2, APPROVER = "clerk.zhou", "reviewer.wu", "reviewer.zheng", "approver.wang"
PAYROLL_APPROVER, ACCOUNTANT, CASHIER = "approver.feng", "acct.li", "cashier.sun"
OFFICER, OFFICER_2 = "officer.gao", "officer.han"
UNIT_REVIEWER = "reviewer.unit.ma"


async def test_class_4_case_from_a_payment_after_death_to_closure(settings, make_settings,  # noqa: PLR0915
                                                                  nats_server):
    timings: dict[str, float] = {}
    started = mark = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        timings[name] = round(now - mark, 2)
        mark = now

    unit = settings.oversight_cases.default_unit  # S01 names no unit: the case goes to the pooling region's agency
    async with AsyncExitStack() as stack:
        urls = {name: await stack.enter_async_context(serve(create_service_app(catalogue.spec(name), settings)))
                for name in ("accounts", "oversight")}
        # Benefits runs in its own stack: it is stopped while the death record arrives, then started again on the
        # same port (the gateway keeps its URL).
        benefits_settings = make_settings(nats_server.url, accounts_url=urls["accounts"])
        benefits_stack = AsyncExitStack()
        stack.push_async_callback(benefits_stack.aclose)
        benefits_app = create_service_app(catalogue.spec("benefits"), benefits_settings)
        urls["benefits"] = await benefits_stack.enter_async_context(serve(benefits_app))
        benefits_port = int(urls["benefits"].rsplit(":", 1)[1])
        gateway = await stack.enter_async_context(gateway_client(make_settings(
            nats_server.url, **{f"{name}_url": url for name, url in urls.items()})))

        def staff(role: str, subject: str, region: str = CITY, **extra) -> dict[str, str]:
            return bearer(settings, role, region=region, subject=subject, **extra)

        clerk = staff("agency_clerk", CLERK, DISTRICT)
        accountant, cashier = staff("accountant", ACCOUNTANT), staff("cashier", CASHIER)
        officer, officer_2 = staff("oversight_officer", OFFICER), staff("oversight_officer", OFFICER_2)
        # The responsible unit's reviewer (reads the unit's cases, submits evidence, cannot move a case).
        unit_staff = staff("agency_reviewer", UNIT_REVIEWER, DISTRICT, unit=unit)
        elsewhere = staff("agency_reviewer", "reviewer.huimin", OTHER_DISTRICT, unit="回民区社会保险事业管理局")
        bank = bank_headers(settings)
        civil_affairs = partner_headers(settings, subject="civil_affairs")
        market_regulation = partner_headers(settings, subject="market_regulation")

        async def call(method: str, path: str, headers: dict | None, expected: int = 200, **kwargs):  # noqa: ANN202
            response = await gateway.request(method, f"/api{path}", headers=headers or {}, **kwargs)
            assert response.status_code == expected, f"{method} {path}: {response.status_code} {response.text}"
            return response.json()

        async def refused(method: str, path: str, headers: dict, status: int, code: str, **kwargs) -> dict:
            body = await call(method, path, headers, status, **kwargs)
            assert body["error"]["code"] == code, body
            return body

        lap("start-up")

        # -- 1. 王建军 and 赵立新: employer, persons, INJURY enrolments, own bank accounts; benefits mirrors them ----
        employer = await call("POST", "/accounts/employers", clerk, 201, json={
            "uscc": uscc(701), "name": "呼和浩特重型机械厂", "region": DISTRICT})
        # Born in 土默特左旗 (150121): its code has no start year (新城区's starts in 1983, after their births).
        persons: dict[str, dict] = {}
        for name, serial, born in (("王建军", 71, date(1975, 4, 2)), ("赵立新", 72, date(1978, 9, 14))):
            cid = make_citizen_id(serial, born=born, sex="M", area="150121")
            person = await call("POST", "/accounts/persons", clerk, 201, json={
                "citizen_id": cid, "name": name, "region": DISTRICT})
            await call("POST", "/accounts/enrolments", clerk, 201, json={
                "person_id": person["id"], "fund": FUND, "employer_id": employer["id"], "start_period": 202001})
            await call("POST", f"/accounts/persons/{person['id']}/bank-accounts", clerk, 201, json={
                "kind": "bank_account", "bank_name": "中国工商银行呼和浩特分行", "account_no": make_card(7000 + serial),
                "holder_name": name})
            persons[name] = {**person, "citizen_id": cid}
        for person in persons.values():
            await eventually(lambda p=person: gateway.get(f"/api/benefits/registry/persons/{p['id']}", headers=clerk),
                             lambda r: r.status_code == 200 and r.json()["accounts"], timeout=30)

        # -- 2. the injury allowances: entered from the determination documents, three levels each ---------------
        # (a claim needs the benefit parameters in force: proposed and approved by two people)
        proposed = await call("POST", "/benefits/parameters", accountant, 201, json={
            "region": CITY, "valid_from": 202601, "document": benefit_document(), "reason": "2026 年度待遇计发参数"})
        await call("POST", f"/benefits/parameters/{proposed['id']}/approve", staff("agency_approver", APPROVER),
                   json={"reason": "同意"})
        for n, person in enumerate(persons.values(), start=31):
            claim = await call("POST", "/benefits/claims", clerk, 201, json={
                "kind": "injury", "person_id": person["id"], "effective_period": JULY, "monthly_amount": MONTHLY,
                "documents": [{"kind": "工伤认定决定书", "reference": f"呼人社工认〔2026〕{n}号"},
                              {"kind": "劳动能力鉴定结论书", "reference": f"呼劳鉴〔2026〕{n}号"}],
                "note": "工伤职工按月领取伤残津贴"})
            assert (claim["status"], claim["blocked_checks"], claim["monthly_amount_fen"]) == (
                "in_review", [], MONTHLY_FEN)
            for level, who in (("first_review", staff("agency_reviewer", REVIEWER_1)),
                               ("second_review", staff("agency_reviewer", REVIEWER_2)),
                               ("approval", staff("agency_approver", APPROVER))):
                decided = await call("POST", f"/benefits/claims/{claim['id']}/decisions", who, json={
                    "decision": "approve", "reason": "材料齐全，同意", "level": level})
            assert decided["status"] == "approved" and decided["entitlement_id"]
            person["entitlement_id"] = decided["entitlement_id"]
        person, zhao = persons["王建军"], persons["赵立新"]
        cid, entitlement_id = person["citizen_id"], person["entitlement_id"]
        lap("registry and claim")

        # -- 3. 2026-07 and 2026-08 paid: run, approval by another person, funding, bank file, bank result ----------
        payroll_approver = staff("agency_approver", PAYROLL_APPROVER)

        async def pay(period: int) -> None:
            run = (await call("POST", "/benefits/payroll/runs", clerk, 201,
                              json={"fund": FUND, "period": period}))["run"]
            assert (run["lines"], run["total"]) == (2, TWO)
            await call("POST", f"/benefits/payroll/runs/{run['id']}/approve", payroll_approver)
            await call("POST", f"/benefits/payroll/runs/{run['id']}/funding-request", accountant, 201)
            issued = (await call("POST", f"/benefits/payroll/runs/{run['id']}/bank-files", cashier, 201))["file"]
            response = await gateway.get(f"/api/benefits/payroll/bank-files/{issued['id']}/content", headers=bank)
            parsed = bankfile.parse_payment_file(response.text)
            settled = await call("POST", f"/benefits/payroll/bank-files/{issued['id']}/results", bank, json={
                "checksum": parsed.checksum,
                "lines": [{"line_no": ln.line_no, "payroll_line_id": ln.payroll_line_id, "result": "paid"}
                          for ln in parsed.lines]})
            assert (settled["paid_lines"], settled["run_status"]) == (2, "paid")

        await pay(JULY)
        await pay(AUGUST)
        lap("payroll 2026-07, 2026-08")

        # -- 4. benefits goes down; the death record (2026-07-20) and a business registration arrive ---------------
        await wait_idle(benefits_app)  # PaymentsSettled of both months is on the bus
        await benefits_stack.aclose()
        death = await call("POST", "/accounts/exchange/batches", civil_affairs, 201, json={
            "batch_key": "MZ-2026-11-031", "kind": "death", "records": [
                {"record_id": "D-1", "citizen_id": cid, "name": "王建军", "death_date": DEATH_DATE}]})
        assert death["applied"] == 1, death
        business_uscc = uscc(702)
        registered_on = today() - timedelta(days=45)
        business = await call("POST", "/accounts/exchange/batches", market_regulation, 201, json={
            "batch_key": "SCJG-2026-11-007", "kind": "business_registration", "records": [
                {"record_id": "B-1", "uscc": business_uscc, "name": "新城区张记便利店",
                 "registered_on": registered_on.isoformat()}]})
        assert (business["total"], business["invalid"], business["conflicts"]) == (1, 0, 0), business

        # -- 5. S01 opened a case from the events; it is listed for its unit and area, not for another district -----
        listed = (await eventually(
            lambda: gateway.get("/api/oversight/cases", headers=unit_staff, params={"unit": unit, "rule_id": "S01"}),
            lambda r: r.status_code == 200 and r.json()["items"], timeout=30)).json()["items"]
        [case] = listed
        case_id = case["id"]
        assert (case["rule_id"], case["fact_key"], case["status"], case["severity"], case["suggested_class"],
                case["seed_clause"], case["unit"], case["region"], case["person_id"], case["amount_fen"],
                case["opened_by"]) == (
            "S01", f"S01:{person['id']}:{AUGUST}", "issued", "high", 4, "001 第二十七条", unit, DISTRICT,
            person["id"], MONTHLY_FEN, "system:oversight")
        assert (case["details"]["period"], case["details"]["death_date"], case["details"]["paid_fen"]) == (
            AUGUST, DEATH_DATE, MONTHLY_FEN)
        assert (await call("GET", "/oversight/cases", elsewhere))["items"] == []
        await refused("GET", f"/oversight/cases/{case_id}", elsewhere, 403, "CASE_NOT_ISSUED_TO_YOU")

        # The sweep finds the same fact again (an occurrence on the same case, no second case) and S11's unregistered
        # business (once oversight has mirrored market regulation's record).
        await eventually(lambda: call("GET", "/oversight/mirror/business-registrations", officer,
                                      params={"uscc": business_uscc, "unregistered": True}),
                         lambda page: page["items"], timeout=30)
        sweep = await call("POST", "/oversight/rules/sweeps", officer, 201, json={"rules": ["S01", "S11"]})
        assert sweep["status"] == "done", sweep
        assert {r: {k: sweep["rules"][r][k] for k in ("found", "created", "existing")} for r in ("S01", "S11")} == {
            "S01": {"found": 1, "created": 0, "existing": 1}, "S11": {"found": 1, "created": 1, "existing": 0}}
        again = await call("GET", f"/oversight/cases/{case_id}", officer)
        # The death reached oversight on two streams (accounts' life-status change and the partner's record), each
        # running S01 (and the payment may have been the later fact on one of them); then the sweep: one case, its
        # occurrences counted. The details name the sources known at the time (a changed report is an occurrence of
        # its own); by the sweep both are known.
        assert again["occurrences"] >= 2 and again["status"] == "issued"
        assert again["details"]["death_reported_by"] == ["partner", "registry"]
        assert [c["id"] for c in (await call("GET", "/oversight/cases", officer,
                                             params={"rule_id": "S01"}))["items"]] == [case_id]
        [s11] = (await call("GET", "/oversight/cases", officer, params={"rule_id": "S11"}))["items"]
        assert (s11["fact_key"], s11["status"], s11["subject_id"]) == (f"S11:{business_uscc}", "issued", business_uscc)
        lap("death, S01 case, sweep")

        # -- 6. investigated, classified as class 4, into the rectification ledger; not closable yet -------------
        await refused("POST", f"/oversight/cases/{case_id}/investigate", unit_staff, 403, "FORBIDDEN", json={})
        await call("POST", f"/oversight/cases/{case_id}/investigate", officer, json={"note": "调取发放明细与死亡证明"})
        classified = await call("POST", f"/oversight/cases/{case_id}/classify", officer, json={
            "class_code": 4, "finding": "2026-07-20 死亡，2026-08 伤残津贴 3 200.00 元仍已发放，属不符合待遇领取条件",
            "amount_fen": MONTHLY_FEN})
        assert (classified["status"], classified["class_code"], classified["class_name"]) == (
            "classified", 4, "不符合待遇领取条件")
        assert [(r["any_of"], r["satisfied"], r["by_event_only"]) for r in classified["required_follow_up"]] == [
            (["benefit_suspended"], False, True), (["recovery_notice_issued"], False, True)]
        # Nobody enters the benefits follow-up by hand: no reference, or a reference oversight never received.
        await refused("POST", f"/oversight/cases/{case_id}/follow-ups", officer, 422, "REFERENCE_REQUIRED",
                      json={"kind": "benefit_suspended", "evidence": "已电话通知停发"})
        await refused("POST", f"/oversight/cases/{case_id}/follow-ups", unit_staff, 409, "NO_BENEFIT_EVENT",
                      json={"kind": "benefit_suspended", "evidence": "已停发", "reference": entitlement_id})
        due = today() + timedelta(days=15)
        rectifying = await call("POST", f"/oversight/cases/{case_id}/rectification", officer, 201, json={
            "measures": "立即停发伤残津贴，下达追回告知书追回 2026-08 多发金额", "due_date": due.isoformat(),
            "responsible": "待遇支付科"})
        assert (rectifying["status"], rectifying["current_deadline"]) == ("rectifying", due.isoformat())
        missing = await refused("POST", f"/oversight/cases/{case_id}/close", officer, 409, "FOLLOW_UP_INCOMPLETE",
                                json={"verification_note": "核查"})
        assert missing["error"]["details"]["missing"] == [["benefit_suspended"], ["recovery_notice_issued"]]
        ledger = await call("GET", "/oversight/rectification-ledger", unit_staff, params={"status": "open"})
        assert [(e["case_id"], e["class_code"], e["due_date"], e["status"]) for e in ledger["items"]] == [
            (case_id, 4, due.isoformat(), "open")]
        lap("investigate, classify, rectify")

        # -- 7. overdue and escalation (judged 31 days ahead: both open cases are past their deadlines) ------------
        ahead = today() + timedelta(days=31)
        overdue = await call("GET", "/oversight/cases/overdue", unit_staff, params={"as_of": ahead.isoformat()})
        assert case_id in [c["id"] for c in overdue]
        overdue = await call("GET", "/oversight/cases/overdue", officer, params={"as_of": ahead.isoformat()})
        assert {c["id"] for c in overdue} == {case_id, s11["id"]}
        assert (await call("GET", "/oversight/cases/overdue", officer))  == []  # nothing overdue today
        escalated = await call("POST", "/oversight/cases/escalations", officer, json={"as_of": ahead.isoformat()})
        assert {(c["id"], c["severity"], c["escalation_level"]) for c in escalated["escalated"]} == {
            (case_id, "severe", 1), (s11["id"], "high", 1)}
        again = await call("POST", "/oversight/cases/escalations", officer, json={"as_of": ahead.isoformat()})
        assert again["escalated"] == []  # once per interval
        await refused("POST", "/oversight/cases/escalations", unit_staff, 403, "FORBIDDEN", json={})
        lap("overdue, escalation")

        # -- 8. benefits comes back and catches up: suspension and recovery notice confirm the case ---------------
        benefits_app = create_service_app(catalogue.spec("benefits"), benefits_settings)
        await benefits_stack.enter_async_context(serve(benefits_app, port=benefits_port))

        async def confirmed() -> dict:
            return await call("GET", f"/oversight/cases/{case_id}", officer)

        detail = await eventually(confirmed, lambda d: all(r["satisfied"] for r in d["required_follow_up"]),
                                  timeout=30)
        status = await call("GET", f"/benefits/eligibility/persons/{person['id']}", clerk)
        [entitlement] = status["entitlements"]
        assert (entitlement["id"], entitlement["status"], entitlement["suspended_reason"]) == (
            entitlement_id, "suspended", "deceased")
        [notice] = (await call("GET", "/benefits/recovery/notices", clerk, params={"person_id": person["id"]}))["items"]
        assert (notice["amount"], notice["status"]) == (MONTHLY, "open")
        follow_ups = {f["kind"]: f for f in detail["follow_ups"]}
        assert set(follow_ups) == {"benefit_suspended", "recovery_notice_issued"}
        assert (follow_ups["benefit_suspended"]["reference"], follow_ups["recovery_notice_issued"]["reference"]) == (
            entitlement_id, notice["id"])
        for f in follow_ups.values():  # from benefits' events, not anyone's word
            assert (f["source"], f["recorded_by"], f["withdrawn_at"]) == ("event", "system:oversight", None)
            assert f["event_id"]
        lap("benefits back: suspension, notice, confirmations")

        # -- 9. the unit's evidence, then closure (销号) by an officer who verifies ------------------------------
        evidence = await call("POST", f"/oversight/cases/{case_id}/rectification/evidence", unit_staff, 201, json={
            "note": "已停发伤残津贴，已向家属送达追回告知书", "document_ref": f"追回告知书 {notice['id']}"})
        assert (evidence["submitted_by"], evidence["submitted_role"]) == (UNIT_REVIEWER, "agency_reviewer")
        await refused("POST", f"/oversight/cases/{case_id}/close", unit_staff, 403, "FORBIDDEN",
                      json={"verification_note": "已整改"})
        closed = await call("POST", f"/oversight/cases/{case_id}/close", officer_2, json={
            "verification_note": "核实待遇已暂停、追回告知书已下达，同意销号"})
        assert (closed["status"], closed["status_name"], closed["closed_by"]) == ("closed", "已销号", OFFICER_2)
        assert closed["rectification"]["status"] == "closed" and closed["rectification"]["closed_by"] == OFFICER_2
        steps = [(h["action"], h["actor_id"], h["from_status"], h["to_status"]) for h in closed["history"]
                 if h["action"] != "reported_again"]  # see the occurrences above
        assert steps == [
            ("open", "system:oversight", None, "issued"),
            ("investigate", OFFICER, "issued", "investigating"),
            ("classify", OFFICER, "investigating", "classified"),
            ("rectify", OFFICER, "classified", "rectifying"),
            ("escalate", OFFICER, "rectifying", "rectifying"),
            ("follow_up_confirmed", "system:oversight", "rectifying", "rectifying"),
            ("follow_up_confirmed", "system:oversight", "rectifying", "rectifying"),
            ("rectification_evidence", UNIT_REVIEWER, "rectifying", "rectifying"),
            ("close", OFFICER_2, "rectifying", "closed"),
        ], steps
        stamps = [h["at"] for h in closed["history"]]
        assert stamps == sorted(stamps)
        closed_ledger = await call("GET", "/oversight/rectification-ledger", officer, params={"status": "closed"})
        [entry] = closed_ledger["items"]
        assert (entry["case_id"], entry["closed_by"], [e["submitted_by"] for e in entry["evidence"]]) == (
            case_id, OFFICER_2, [UNIT_REVIEWER])
        lap("evidence, closure")

        # -- 10. 赵立新 died on 2026-07-25, reported with benefits running: benefits suspends and issues its notice
        #        at the same moment oversight's S01 opens the case (from the same accounts events) — whichever comes
        #        first, the class-4 case is confirmed by those events when it is classified --------------------------
        await call("POST", "/accounts/exchange/batches", civil_affairs, 201, json={
            "batch_key": "MZ-2026-11-032", "kind": "death", "records": [
                {"record_id": "D-1", "citizen_id": zhao["citizen_id"], "name": "赵立新", "death_date": "2026-07-25"}]})
        [second] = (await eventually(
            lambda: call("GET", "/oversight/cases", unit_staff, params={"rule_id": "S01", "person_id": zhao["id"]}),
            lambda page: page["items"], timeout=30))["items"]
        await eventually(lambda: call("GET", "/benefits/recovery/notices", clerk, params={"person_id": zhao["id"]}),
                         lambda page: page["items"], timeout=30)
        await call("POST", f"/oversight/cases/{second['id']}/investigate", officer, json={})
        await call("POST", f"/oversight/cases/{second['id']}/classify", officer, json={
            "class_code": 4, "finding": "2026-07-25 死亡，2026-08 伤残津贴仍已发放", "amount_fen": MONTHLY_FEN})
        both = await eventually(lambda: call("GET", f"/oversight/cases/{second['id']}", officer),
                                lambda d: all(r["satisfied"] for r in d["required_follow_up"]), timeout=15)
        assert sorted((f["kind"], f["source"], f["reference"]) for f in both["follow_ups"]) == [
            ("benefit_suspended", "event", zhao["entitlement_id"]),
            ("recovery_notice_issued", "event", (await call("GET", "/benefits/recovery/notices", clerk, params={
                "person_id": zhao["id"]}))["items"][0]["id"])]
        lap("a second death with benefits running")

        # -- 10. the S11 case is a false positive: proposed by one officer, confirmed by another ------------------
        proposed = await call("POST", f"/oversight/cases/{s11['id']}/dismissal", officer, json={
            "reason": "该个体工商户经营者一人经营、无雇工，不属于应办理单位社会保险登记的用人单位"})
        assert (proposed["status"], proposed["dismissal_proposed_by"]) == ("issued", OFFICER)
        await refused("POST", f"/oversight/cases/{s11['id']}/dismissal/decision", officer, 403, "SAME_OFFICER",
                      json={"approve": True})
        dismissed = await call("POST", f"/oversight/cases/{s11['id']}/dismissal/decision", officer_2,
                               json={"approve": True, "reason": "复核无雇工，同意排除"})
        assert (dismissed["status"], dismissed["dismissed_by"]) == ("dismissed", OFFICER_2)
        assert [(h["action"], h["actor_id"]) for h in dismissed["history"]][-2:] == [
            ("propose_dismissal", OFFICER), ("confirm_dismissal", OFFICER_2)]

        it_admin, auditor = staff("it_admin", "it.ma"), staff("internal_auditor", "audit.zhou")
        for service in ("oversight", "benefits"):
            assert (await call("GET", f"/{service}/admin/dead-letters", it_admin)) == []
        assert (await call("GET", "/oversight/audit/verify", auditor))["ok"] is True
        lap("dismissal")

    timings["total"] = round(time.perf_counter() - started, 2)
    print(f"\noversight case flow timings (s): {timings}")


# -- 2. a whistleblower report without an account ---------------------------------------------------------------------

REPORTER = {"name": "李建华", "citizen_id": make_citizen_id(81, born=date(1980, 5, 6), sex="M", area="150121"),
            "phone": "13847112233", "address": "呼和浩特市新城区兴安北路 8 号"}
JOINT = [{"name": "孙丽", "citizen_id": make_citizen_id(82, born=date(1982, 1, 9), sex="F", area="150121")},
         {"name": "周强", "citizen_id": make_citizen_id(83, born=date(1979, 11, 3), sex="M", area="150121")}]

# The reward (001 第三十三条、第三十六条、第三十七条; default standard: 2 % of the verified amount, at least 200 yuan, at most
# 100 000 yuan per matter, rounded half-up to the fen once):
#   verified 123 456.78 yuan = 12 345 678 fen; 2 % = 246 913.56 fen → 246 914 fen = 2 469.14 yuan
#   (above the 200.00 floor, below the 100 000.00 cap)
#   the joint report: verified 5 000.00 yuan; 2 % = 100.00 yuan < 200.00 → the floor, 200.00 yuan, one reward for
#   its two signatories (a joint report counts as one reporter, 001 第三十七条)
VERIFIED, REWARD = "123456.78", "2469.14"
SMALL_VERIFIED, SMALL_REWARD = "5000.00", "200.00"


async def test_whistleblower_report_without_an_account(settings, make_settings, nats_server):  # noqa: PLR0915
    """The public files a named report through the gateway with no Authorization header and gets a tracking code;
    the public progress page shows the status (and later the answer) and nothing personal; an oversight officer
    assigns, investigates, answers with a verified amount of 123 456.78 yuan; the reward is 2 469.14 yuan (the hand
    calculation above), computed on the answer's verified amount (another figure is refused); a joint report with a
    small verified amount gets one reward, at the floor. The reporter's identity is shown to oversight officers,
    withheld from internal auditors (the other role that reads reports) and refused to agency staff. The public
    intake answers 429 once the per-IP burst is used up, whatever X-Forwarded-For the caller sends."""
    started = time.perf_counter()
    async with AsyncExitStack() as stack:
        oversight_url = await stack.enter_async_context(
            serve(create_service_app(catalogue.spec("oversight"), settings)))
        gateway = await stack.enter_async_context(gateway_client(make_settings(nats_server.url,
                                                                               oversight_url=oversight_url)))
        officer = bearer(settings, "oversight_officer", region=CITY, subject=OFFICER)
        auditor = bearer(settings, "internal_auditor", region=CITY, subject="audit.zhou")
        clerk = bearer(settings, "agency_clerk", region=DISTRICT, subject=CLERK)

        async def call(method: str, path: str, headers: dict | None, expected: int = 200, **kwargs):  # noqa: ANN202
            response = await gateway.request(method, f"/api/oversight{path}", headers=headers or {}, **kwargs)
            assert response.status_code == expected, f"{method} {path}: {response.status_code} {response.text}"
            return response.json()

        async def refused(method: str, path: str, headers: dict | None, status: int, code: str, **kwargs) -> dict:
            body = await call(method, path, headers, status, **kwargs)
            assert body["error"]["code"] == code, body
            return body

        # -- filed on the public web form, no account, no token ---------------------------------------------------
        filed = await call("POST", "/whistleblowing/reports", None, 201, json={
            "anonymous": False, "reporters": [REPORTER], "subject_name": "呼和浩特市某某劳务派遣有限公司",
            "subject_type": "employer", "category": "payment", "title": "冒领已故职工工伤待遇",
            "content": "本人李建华反映：该公司负责人代已故职工领取伤残津贴两年，联系电话 13847112233。",
            "region": DISTRICT, "occurred_on": "2026-03-01", "amount_claimed": "120000.00"})
        code, report_id = filed["tracking_code"], filed["report_id"]
        assert filed["status"] == "received" and len(code.replace("-", "")) == 20
        assert filed["track_url"] == f"/api/oversight/whistleblowing/track/{code}"
        # Phone, letter, e-mail and visit reports are recorded by an officer: without a token, refused.
        await refused("POST", "/whistleblowing/reports", None, 401, "UNAUTHENTICATED", json={
            "channel": "phone", "anonymous": True, "category": "payment", "title": "电话举报", "content": "内容"})

        async def track() -> dict:
            response = await gateway.get(filed["track_url"])  # the URL as given to the reporter, no token
            assert response.status_code == 200, response.text
            for personal in (REPORTER["name"], REPORTER["citizen_id"], REPORTER["phone"], REPORTER["address"],
                             OFFICER):
                assert personal not in response.text  # no identity, nobody's name, no internal handling
            return response.json()

        progress = await track()
        assert set(progress) == {"status", "status_label", "received_at", "last_update_at", "answer", "answered_at",
                                 "closed_reason", "closed_at", "steps"}
        assert (progress["status"], progress["status_label"], progress["answer"]) == ("received", "已受理", None)
        await refused("GET", "/whistleblowing/track/ABCD-EFGH-JKMN-PQRS-TVWX", None, 404, "TRACKING_CODE_NOT_FOUND")

        # -- the identity: oversight officers only --------------------------------------------------------------
        seen = await call("GET", f"/whistleblowing/reports/{report_id}", officer)
        assert (seen["identity_withheld"], seen["reporters"][0]["name"], seen["reporters"][0]["citizen_id"]) == (
            False, REPORTER["name"], REPORTER["citizen_id"])
        assert REPORTER["name"] in seen["content"]
        withheld = await call("GET", f"/whistleblowing/reports/{report_id}", auditor)
        assert (withheld["identity_withheld"], withheld["reporters"], withheld["subject_name"]) == (
            True, None, "呼和浩特市某某劳务派遣有限公司")
        assert REPORTER["name"] not in withheld["content"] and REPORTER["phone"] not in withheld["content"]
        listed = await call("GET", "/whistleblowing/reports", auditor)
        assert [(r["id"], r["reporters"]) for r in listed["items"]] == [(report_id, None)]
        await refused("GET", f"/whistleblowing/reports/{report_id}", clerk, 403, "FORBIDDEN")
        await refused("GET", "/whistleblowing/reports", clerk, 403, "FORBIDDEN")

        # -- assigned, investigated, answered with the verified amount ----------------------------------------
        await refused("POST", f"/whistleblowing/reports/{report_id}/assign", auditor, 403, "FORBIDDEN",
                      json={"officer_id": OFFICER})
        await call("POST", f"/whistleblowing/reports/{report_id}/assign", officer, json={
            "officer_id": OFFICER_2, "note": "交稽核科核查"})
        assert (await track())["status"] == "assigned"
        await call("POST", f"/whistleblowing/reports/{report_id}/investigate", officer_2 := bearer(
            settings, "oversight_officer", region=CITY, subject=OFFICER_2), json={"note": "调取发放记录"})
        await call("POST", f"/whistleblowing/reports/{report_id}/notes", officer_2, 201, json={
            "text": "内部记录：已约谈该公司财务负责人"})
        answer = "经查，举报反映的代领已故职工工伤待遇问题属实，已责令退回并依法处理。感谢您的监督。"
        answered = await call("POST", f"/whistleblowing/reports/{report_id}/answer", officer_2, json={
            "answer": answer, "outcome": "substantiated", "verified_amount": VERIFIED})
        assert (answered["status"], answered["verified_amount"]) == ("answered", VERIFIED)
        progress = await track()
        assert (progress["status"], progress["status_label"], progress["answer"]) == ("answered", "已答复", answer)
        assert [s["status"] for s in progress["steps"]] == ["received", "assigned", "investigating", "answered"]
        assert "约谈" not in str(progress) and "substantiated" not in str(progress)  # internal notes and outcome

        # -- the reward: on the answer's verified amount, 2 % ------------------------------------------------------
        findings = {"full_civil_capacity": True, "facts_already_known": False, "statutory_duty": False}
        mismatch = await refused("POST", f"/whistleblowing/reports/{report_id}/reward", officer, 409,
                                 "VERIFIED_AMOUNT_MISMATCH", json={"verified_amount": "200000.00", **findings})
        assert mismatch["error"]["details"]["verified_amount"] == VERIFIED
        await refused("POST", f"/whistleblowing/reports/{report_id}/reward", auditor, 403, "FORBIDDEN",
                      json=findings)
        granted = await call("POST", f"/whistleblowing/reports/{report_id}/reward", officer, 201, json={
            "verified_amount": VERIFIED, **findings, "note": "首次实名举报，查证属实"})
        assert (granted["eligible"], granted["kind"], granted["failed"], granted["standard"]) == (
            True, "main", [], "default")
        assert (granted["verified_amount"], granted["computed"], granted["amount"], granted["floor_applied"],
                granted["cap_applied"]) == (VERIFIED, REWARD, REWARD, False, False)
        assert [c["code"] for c in granted["checks"]] == ["NAMED", "FULL_CIVIL_CAPACITY", "CLEAR_SUBJECT",
                                                          "WITHIN_SCOPE", "NEW_FACTS", "VERIFIED",
                                                          "NO_STATUTORY_DUTY", "FIRST_REPORTER"]
        await refused("POST", f"/whistleblowing/reports/{report_id}/reward", officer, 409, "REWARD_EXISTS",
                      json=findings)

        # -- a joint report with a small verified amount: one reward, at the floor ----------------------------
        joint = await call("POST", "/whistleblowing/reports", None, 201, json={
            "anonymous": False, "reporters": JOINT, "subject_name": "某某物业服务有限公司", "subject_type": "employer",
            "category": "collection", "title": "少报缴费基数", "content": "单位按最低基数申报缴费。"})
        for path, body in (("assign", {"officer_id": OFFICER_2}), ("investigate", {}),
                           ("answer", {"answer": "经查部分属实，已责令补缴。", "outcome": "partly_substantiated",
                                       "verified_amount": SMALL_VERIFIED})):
            await call("POST", f"/whistleblowing/reports/{joint['report_id']}/{path}", officer_2, json=body)
        small = await call("POST", f"/whistleblowing/reports/{joint['report_id']}/reward", officer, 201, json=findings)
        assert (small["eligible"], small["computed"], small["amount"], small["floor_applied"]) == (
            True, "100.00", SMALL_REWARD, True)
        assert "联名 2 人" in small["checks"][0]["detail"]
        await refused("POST", f"/whistleblowing/reports/{joint['report_id']}/reward", officer, 409, "REWARD_EXISTS",
                      json=findings)
        detail = await call("GET", f"/whistleblowing/reports/{joint['report_id']}", officer)
        assert (detail["reporter_count"], [r["amount"] for r in detail["rewards"]]) == (2, [SMALL_REWARD])

        # -- the public intake's per-IP limit: the burst, then 429 (a forged X-Forwarded-For does not help) ------
        burst = settings.whistleblowing.intake_burst
        for n in range(burst - 2):  # two reports already filed from this address
            await call("POST", "/whistleblowing/reports", None, 201, json={
                "anonymous": True, "category": "other", "title": f"咨询 {n}", "content": "匿名反映"})
        limited = await refused("POST", "/whistleblowing/reports", {"X-Forwarded-For": "203.0.113.9"}, 429,
                                "RATE_LIMITED", json={"anonymous": True, "category": "other", "title": "再一次",
                                                      "content": "匿名反映"})
        assert limited["error"]["details"]["retry_after_seconds"] > 0
        assert (await track())["status"] == "answered"  # tracking has its own limit
        assert (await call("GET", "/audit/verify", auditor))["ok"] is True
        assert (await call("GET", "/admin/dead-letters", bearer(settings, "it_admin", subject="it.ma"))) == []

    print(f"\nwhistleblower flow: {time.perf_counter() - started:.2f} s")
