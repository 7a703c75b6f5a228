"""Payroll and bank payments: run → approval by another person → funding → bank file → results →
correction → re-issue → paid; idempotent runs frozen after approval, refusals, and no line paid twice."""

import asyncio
import hashlib
import json
from datetime import date

import pytest
from sqlalchemy import func, select, update
from sqlmodel import Session

from services.benefits.models import (
    BankFileLine,
    BeneficiaryAccount,
    BeneficiaryPerson,
    Entitlement,
    PayrollLine,
    PayrollRun,
    Recovery,
    RecoveryNotice,
)
from services.benefits.payroll import bankfile, service
from services.kernel import clock
from services.kernel.errors import Conflict
from services.kernel.events import new_event_id
from services.kernel.periods import add_months
from tests.support.registry import engine_of, error_code, make_card, outbox
from tests.support.benefits import add_account, lines_of

from tests.support.payroll import (  # noqa: F401 - the helpers' home since the uploaded result files share them
    FUND,
    PERIOD,
    REGION,
    add_entitlement,
    add_person,
    approved_and_funded,
    download,
    issued_file as _issued_file,
    payroll_roles,
    post_results,
    result_csv,
    run_payroll,
    statuses,
)


# -- rows written straight into the benefits database (claims and the registry mirror are other packages') ------------


def set_entitlement(client, entitlement_id: str, **values) -> None:  # noqa: ANN001
    with Session(engine_of(client)) as session:
        session.execute(update(Entitlement).where(Entitlement.id == entitlement_id).values(**values))
        session.commit()


def close_account(client, account_id: str) -> None:  # noqa: ANN001
    with Session(engine_of(client)) as session:
        session.execute(update(BeneficiaryAccount).where(BeneficiaryAccount.bank_account_id == account_id)
                        .values(status="closed"))
        session.commit()


@pytest.fixture
def roles(auth):  # noqa: ANN001, ANN201
    return payroll_roles(auth)


# -- the whole flow --------------------------------------------------------------------------------------------------


async def test_run_approve_fund_pay_fail_correct_reissue_paid(start_service, roles, auth):
    # 004 第20项: payroll lines computed from the entitlements, never entered.
    async with start_service("benefits") as benefits:
        paid_a = add_person(benefits, 1, name="张三")
        acc_a, no_a = add_account(benefits, paid_a, 1, holder="张三")
        fails = add_person(benefits, 2, name="李四")
        acc_b, no_b = add_account(benefits, fails, 2, holder="李四")
        paid_c = add_person(benefits, 3, name="王五")
        add_account(benefits, paid_c, 3, holder="王五", kind="ss_card")
        no_account = add_person(benefits, 4, name="赵六")
        e_a = add_entitlement(benefits, paid_a, 350_000)
        e_b = add_entitlement(benefits, fails, 412_345)
        add_entitlement(benefits, paid_c, 98_801, start=PERIOD, end=PERIOD)  # the month itself is covered
        e_withheld = add_entitlement(benefits, no_account, 200_000)
        # not in this payroll: suspended, ended before, starting after, another fund
        add_entitlement(benefits, add_person(benefits, 5), 100_000, status="suspended")
        add_entitlement(benefits, add_person(benefits, 6), 100_000, end=add_months(PERIOD, -1))
        add_entitlement(benefits, add_person(benefits, 7), 100_000, start=add_months(PERIOD, 1))
        add_entitlement(benefits, paid_a, 50_000, fund="UNEMP")

        computed = await run_payroll(benefits, roles["clerk"])
        run = computed["run"]
        assert (computed["created"], computed["recomputed"], computed["frozen"]) == (True, False, False)
        assert (run["fund"], run["period"], run["status"], run["lines"], run["total"]) == \
            (FUND, PERIOD, "computed", 3, "8611.46")
        assert (run["withheld_lines"], run["withheld_total"], run["computed_by"]) == (1, "2000.00", "clerk.wang")
        lines = {ln.entitlement_id: ln for ln in lines_of(benefits, run["id"])}
        assert set(lines) == {e_a, e_b, e_withheld, *[k for k in lines if k not in (e_a, e_b, e_withheld)]}
        assert len(lines) == 4
        assert lines[e_withheld].status == "withheld" and lines[e_withheld].failure_reason.startswith("NO_OWN_ACCOUNT")
        assert (lines[e_a].bank_account_id, lines[e_a].amount_fen, lines[e_a].status) == (acc_a, 350_000, "pending")

        verified = (await benefits.get(f"/payroll/runs/{run['id']}/verify", headers=roles["auditor"])).json()
        assert verified["ok"] is True and verified["recomputed_total"] == "8611.46"

        # approval by another person; then the accountant asks finance for the money
        approved = await benefits.post(f"/payroll/runs/{run['id']}/approve", headers=roles["approver"])
        assert approved.status_code == 200 and approved.json()["status"] == "approved"
        [event] = outbox(benefits, "benefits.payroll.approved.v1")
        assert (event["run_id"], event["fund"], event["period"], event["lines"], event["total_fen"],
                event["approved_by"]) == (run["id"], FUND, PERIOD, 3, 861_146, "approver.li")
        funding = await benefits.post(f"/payroll/runs/{run['id']}/funding-request", headers=roles["accountant"])
        assert funding.status_code == 201 and funding.json()["amount"] == "8611.46"
        again = await benefits.post(f"/payroll/runs/{run['id']}/funding-request", headers=roles["accountant"])
        assert again.status_code == 200 and again.json()["replayed"] is True
        [requested] = outbox(benefits, "benefits.funding.requested.v1")
        assert (requested["run_id"], requested["fund"], requested["period"], requested["amount_fen"]) == \
            (run["id"], FUND, PERIOD, 861_146)

        # the bank file: own accounts only, checksum verifiable from the content alone
        issued = await benefits.post(f"/payroll/runs/{run['id']}/bank-files", headers=roles["cashier"])
        assert issued.status_code == 201, issued.text
        file = issued.json()["file"]
        assert (file["sequence"], file["lines"], file["total"], file["status"]) == (1, 3, "8611.46", "issued")
        content = await download(benefits, roles, file["id"])
        records = content.rstrip("\n").split("\n")
        assert records[0] == f"SIFUND-PAY-1,{file['id']},{run['id']},{FUND},{PERIOD},1,3,861146"
        detail = "".join(r + "\n" for r in records[1:-1])
        assert records[-1] == f"SHA256,{hashlib.sha256(detail.encode()).hexdigest()}" == f"SHA256,{file['checksum']}"
        parsed = bankfile.parse_payment_file(content)
        by_account = {ln.account_no: ln for ln in parsed.lines}
        assert by_account[no_a].holder_name == "张三" and by_account[no_a].amount_fen == 350_000
        assert f",{no_a},张三,3500.00,{lines[e_a].id}" in content
        assert {ln.payroll_line_id for ln in parsed.lines} == {lines[e_a].id, lines[e_b].id,
                                                               *[ln.id for k, ln in lines.items()
                                                                 if k not in (e_a, e_b, e_withheld)]}
        issued_events = outbox(benefits, "benefits.payments.issued.v1")
        assert len(issued_events) == 1 and (issued_events[0]["part"], issued_events[0]["parts"]) == (1, 1)
        assert {(ln["account_no"], ln["holder_name"]) for ln in issued_events[0]["lines"]} == \
            {(ln.account_no, ln.holder_name) for ln in parsed.lines}
        same = await benefits.post(f"/payroll/runs/{run['id']}/bank-files", headers=roles["cashier"])
        assert same.status_code == 200 and same.json()["replayed"] and same.json()["file"]["id"] == file["id"]

        # results: one account closed at the bank
        failed_no = next(ln.line_no for ln in parsed.lines if ln.account_no == no_b)
        results = [(ln.line_no, ln.payroll_line_id, "failed" if ln.line_no == failed_no else "paid",
                    "账户已销户" if ln.line_no == failed_no else None) for ln in parsed.lines]
        settled = await post_results(benefits, roles, file["id"], result_csv(file["id"], file["checksum"], results))
        assert settled.status_code == 200, settled.text
        body = settled.json()
        assert (body["applied"], body["paid_lines"], body["paid_total"], body["failed_lines"],
                body["returned_total"], body["file_status"], body["run_status"]) == \
            (3, 2, "4488.01", 1, "4123.45", "settled", "approved")
        [settled_event] = outbox(benefits, "benefits.payments.settled.v1")
        returned = [ln for ln in settled_event["lines"] if ln["result"] == "failed"]
        assert returned == [{"payroll_line_id": lines[e_b].id, "person_id": fails, "amount_fen": 412_345,
                             "period": PERIOD, "result": "failed", "reason": "账户已销户"}]
        summary = (await benefits.get(f"/payroll/bank-files/{file['id']}", headers=roles["accountant"])).json()
        assert (summary["returned_total"], summary["paid_total"], summary["awaiting_result"]) == \
            ("4123.45", "4488.01", 0)

        # not corrected yet: nothing to re-issue
        early = await benefits.post(f"/payroll/runs/{run['id']}/reissue", headers=roles["cashier"])
        assert early.status_code == 409 and error_code(early) == "NO_CORRECTED_ACCOUNT"

        # the account is corrected (registry: old closed, new active) → only the failed line goes out again
        close_account(benefits, acc_b)
        acc_b2, no_b2 = add_account(benefits, fails, 22, holder="李四")
        reissued = await benefits.post(f"/payroll/runs/{run['id']}/reissue", headers=roles["cashier"])
        assert reissued.status_code == 201, reissued.text
        second = reissued.json()["file"]
        assert (second["sequence"], second["lines"], second["total"]) == (2, 1, "4123.45")
        assert reissued.json()["not_reissued"] == []
        second_file = bankfile.parse_payment_file(await download(benefits, roles, second["id"]))
        assert [(ln.account_no, ln.payroll_line_id) for ln in second_file.lines] == [(no_b2, lines[e_b].id)]
        assert {ln.payroll_line_id for ln in second_file.lines}.isdisjoint(
            {ln.payroll_line_id for ln in parsed.lines if ln.line_no != failed_no})
        assert lines_of(benefits, run["id"])[0] is not None
        assert {ln.id: ln.bank_account_id for ln in lines_of(benefits, run["id"])}[lines[e_b].id] == acc_b2

        paid = await post_results(benefits, roles, second["id"],
                                  result_csv(second["id"], second["checksum"], [(1, lines[e_b].id, "paid", None)]))
        assert paid.status_code == 200 and paid.json()["run_status"] == "paid"
        final = (await benefits.get(f"/payroll/runs/{run['id']}", headers=roles["auditor"])).json()
        assert final["status"] == "paid"
        assert final["by_status"] == {"paid": {"lines": 3, "total": "8611.46"},
                                      "withheld": {"lines": 1, "total": "2000.00"}}
        # every line paid exactly once, across both files
        with Session(engine_of(benefits)) as session:
            paid_counts = dict(session.execute(
                select(BankFileLine.payroll_line_id, func.count()).where(BankFileLine.result == "paid")
                .group_by(BankFileLine.payroll_line_id)).all())
        assert sorted(paid_counts.values()) == [1, 1, 1]
        verified = (await benefits.get(f"/payroll/runs/{run['id']}/verify", headers=roles["auditor"])).json()
        assert verified["ok"] is True, verified
        assert (await benefits.get("/audit/verify", headers=roles["auditor"])).json()["ok"] is True
        actions = [e["action"] for e in (await benefits.get("/audit/entries", headers=roles["auditor"])).json()]
        assert actions == ["payroll.compute", "payroll.approve", "payroll.request_funding", "payroll.bank_file",
                           "payroll.bank_results", "payroll.bank_file", "payroll.bank_results"]

        # the payroll cannot be recomputed any more
        frozen = await run_payroll(benefits, roles["clerk"], expect=200)
        assert frozen["frozen"] is True and frozen["run"]["status"] == "paid"


# -- runs ------------------------------------------------------------------------------------------------------------


async def test_run_is_idempotent_recomputed_until_approved_then_frozen(start_service, roles):
    async with start_service("benefits") as benefits:
        person = add_person(benefits, 1, name="张三")
        add_account(benefits, person, 1, holder="张三")
        entitlement = add_entitlement(benefits, person, 300_000)

        first = await run_payroll(benefits, roles["clerk"])
        ids = [ln.id for ln in lines_of(benefits, first["run"]["id"])]
        again = await run_payroll(benefits, roles["clerk"], expect=200)
        assert again["run"]["id"] == first["run"]["id"] and again["recomputed"] is True
        assert [ln.id for ln in lines_of(benefits, first["run"]["id"])] == ids  # deterministic

        # the entitlement changes before approval: a re-run (by another clerk) follows it
        set_entitlement(benefits, entitlement, monthly_amount_fen=310_000)
        other = add_person(benefits, 2, name="李四")
        add_account(benefits, other, 2, holder="李四")
        add_entitlement(benefits, other, 100_000)
        recomputed = await run_payroll(benefits, roles["clerk2"], expect=200)
        assert (recomputed["run"]["lines"], recomputed["run"]["total"], recomputed["run"]["computed_by"]) == \
            (2, "4100.00", "clerk.zhao")

        # approved: frozen; a further change and a re-run leave it as approved
        approved = await benefits.post(f"/payroll/runs/{first['run']['id']}/approve", headers=roles["approver"])
        assert approved.status_code == 200
        set_entitlement(benefits, entitlement, monthly_amount_fen=999_999)
        frozen = await run_payroll(benefits, roles["clerk"], expect=200)
        assert (frozen["frozen"], frozen["recomputed"], frozen["run"]["total"], frozen["run"]["status"]) == \
            (True, False, "4100.00", "approved")
        assert {ln.amount_fen for ln in lines_of(benefits, first["run"]["id"])} == {310_000, 100_000}
        verified = (await benefits.get(f"/payroll/runs/{first['run']['id']}/verify", headers=roles["clerk"])).json()
        assert verified["ok"] is True and verified["lines_not_matching_entitlement"] == 1
        with Session(engine_of(benefits)) as session:
            assert session.execute(select(func.count()).select_from(PayrollRun)).scalar_one() == 1

        # another month is another run
        other_month = await run_payroll(benefits, roles["clerk"], period=add_months(PERIOD, -1))
        assert other_month["run"]["id"] != first["run"]["id"]

        listed = (await benefits.get("/payroll/runs", params={"fund": FUND}, headers=roles["auditor"])).json()
        assert [r["period"] for r in listed] == [PERIOD, add_months(PERIOD, -1)]
        page = (await benefits.get(f"/payroll/runs/{first['run']['id']}/lines", params={"limit": 1},
                                   headers=roles["clerk"])).json()
        assert len(page["items"]) == 1 and page["next_cursor"]
        rest = (await benefits.get(f"/payroll/runs/{first['run']['id']}/lines",
                                   params={"after": page["next_cursor"]}, headers=roles["auditor"])).json()
        assert len(rest["items"]) == 1 and rest["next_cursor"] is None
        assert rest["items"][0]["account_no"].startswith("*" * 15)  # masked for the auditor (pii)


async def test_approver_must_not_be_the_computer(start_service, auth, roles):
    async with start_service("benefits") as benefits:
        person = add_person(benefits, 1, name="张三")
        add_account(benefits, person, 1, holder="张三")
        add_entitlement(benefits, person, 300_000)
        both = auth("agency_clerk", "agency_approver", subject="clerk.and.approver")
        run = (await run_payroll(benefits, both))["run"]
        refused = await benefits.post(f"/payroll/runs/{run['id']}/approve", headers=both)
        assert refused.status_code == 403 and error_code(refused) == "SAME_PERSON_CANNOT_APPROVE"
        assert outbox(benefits, "benefits.payroll.approved.v1") == []
        # bank files and funding need the approval first
        for path, who in (("funding-request", "accountant"), ("bank-files", "cashier")):
            early = await benefits.post(f"/payroll/runs/{run['id']}/{path}", headers=roles[who])
            assert early.status_code == 409 and error_code(early) == "PAYROLL_NOT_APPROVED"
        assert (await benefits.post(f"/payroll/runs/{run['id']}/approve", headers=roles["approver"])).status_code == 200
        twice = await benefits.post(f"/payroll/runs/{run['id']}/approve", headers=roles["approver"])
        assert twice.status_code == 409 and error_code(twice) == "PAYROLL_ALREADY_APPROVED"
        unfunded = await benefits.post(f"/payroll/runs/{run['id']}/bank-files", headers=roles["cashier"])
        assert unfunded.status_code == 409 and error_code(unfunded) == "FUNDING_NOT_REQUESTED"
        missing = await benefits.post("/payroll/runs/nope/approve", headers=roles["approver"])
        assert missing.status_code == 404 and error_code(missing) == "PAYROLL_RUN_NOT_FOUND"


async def test_finance_reads_the_funding_requests_and_approves_nothing(start_service, roles, auth):
    finance = auth("finance_officer", subject="finance.qian")
    async with start_service("benefits") as benefits:
        person = add_person(benefits, 1, name="张三")
        add_account(benefits, person, 1, holder="张三")
        add_entitlement(benefits, person, 300_000)
        asked = (await run_payroll(benefits, roles["clerk"]))["run"]
        await approved_and_funded(benefits, roles, asked["id"])
        not_asked = (await run_payroll(benefits, roles["clerk"], period=add_months(PERIOD, -1)))["run"]
        approved = await benefits.post(f"/payroll/runs/{not_asked['id']}/approve", headers=roles["approver"])
        assert approved.status_code == 200
        computed = (await run_payroll(benefits, roles["clerk"], period=add_months(PERIOD, -2)))["run"]

        everything = await benefits.get("/payroll/runs", headers=finance)
        assert everything.status_code == 200 and len(everything.json()) == 3
        requested = (await benefits.get("/payroll/runs", params={"funding": "requested"}, headers=finance)).json()
        assert [(r["id"], r["total"]) for r in requested] == [(asked["id"], "3000.00")]
        assert requested[0]["funding_requested_at"]
        awaiting = (await benefits.get("/payroll/runs", params={"funding": "awaiting"}, headers=finance)).json()
        assert [r["id"] for r in awaiting] == [not_asked["id"]]
        one = await benefits.get(f"/payroll/runs/{asked['id']}", headers=finance)
        assert one.status_code == 200 and one.json()["total"] == "3000.00"

        bad = await benefits.get("/payroll/runs", params={"funding": "maybe"}, headers=finance)
        assert bad.status_code == 422
        # reading only: no approval, no funding request, no lines (the persons' accounts)
        for method, path in (("POST", f"/payroll/runs/{computed['id']}/approve"),
                             ("POST", f"/payroll/runs/{not_asked['id']}/funding-request"),
                             ("GET", f"/payroll/runs/{asked['id']}/lines")):
            refused = await benefits.request(method, path, headers=finance)
            assert refused.status_code == 403, (method, path)
        assert (await benefits.get("/payroll/runs", headers=auth("tax_system"))).status_code == 403


async def test_future_period_is_refused(start_service, roles):
    async with start_service("benefits") as benefits:
        current = service.china_period()
        future = await run_payroll(benefits, roles["clerk"], period=add_months(current, 1), expect=422)
        assert future["error"]["code"] == "PERIOD_IN_FUTURE"
        await run_payroll(benefits, roles["clerk"], period=current)  # this month is allowed
        bad = await run_payroll(benefits, roles["clerk"], period=202513, expect=422)
        assert bad["error"]["code"] == "INVALID_PERIOD"


async def test_withheld_lines_without_an_own_account(start_service, roles):
    async with start_service("benefits") as benefits:
        own = add_person(benefits, 1, name="张三")
        add_account(benefits, own, 1, holder="张三")
        add_account(benefits, own, 11, holder="张三", status="closed")
        someone_elses = add_person(benefits, 2, name="李四")
        add_account(benefits, someone_elses, 2, holder="李四的儿子")
        only_closed = add_person(benefits, 3, name="王五")
        add_account(benefits, only_closed, 3, holder="王五", status="closed")
        nothing = add_person(benefits, 4, name="赵六")
        dead = add_person(benefits, 5, name="钱七", life_status="deceased", death_date=date(2025, 1, 20))
        add_account(benefits, dead, 5, holder="钱七")
        expected = {
            add_entitlement(benefits, own, 100_000): ("pending", None),
            add_entitlement(benefits, someone_elses, 100_000): ("withheld", "ACCOUNT_NOT_OWN"),
            add_entitlement(benefits, only_closed, 100_000): ("withheld", "NO_OWN_ACCOUNT"),
            add_entitlement(benefits, nothing, 100_000): ("withheld", "NO_OWN_ACCOUNT"),
            add_entitlement(benefits, dead, 100_000): ("withheld", "DECEASED"),
            add_entitlement(benefits, new_event_id(), 100_000): ("withheld", "PERSON_NOT_FOUND"),
        }
        run = (await run_payroll(benefits, roles["clerk"]))["run"]
        assert (run["lines"], run["total"], run["withheld_lines"], run["withheld_total"]) == \
            (1, "1000.00", 5, "5000.00")
        got = {ln.entitlement_id: (ln.status, ln.failure_reason.split()[0] if ln.failure_reason else None)
               for ln in lines_of(benefits, run["id"])}
        assert got == expected
        withheld = (await benefits.get(f"/payroll/runs/{run['id']}/lines", params={"status": "withheld"},
                                       headers=roles["clerk"])).json()["items"]
        assert len(withheld) == 5 and all(w["bank_account_id"] is None and w["reason"] for w in withheld)

        await approved_and_funded(benefits, roles, run["id"])
        file = (await benefits.post(f"/payroll/runs/{run['id']}/bank-files", headers=roles["cashier"])).json()["file"]
        parsed = bankfile.parse_payment_file(await download(benefits, roles, file["id"]))
        assert [(ln.holder_name, ln.amount_fen) for ln in parsed.lines] == [("张三", 100_000)]
        [event] = outbox(benefits, "benefits.funding.requested.v1")
        assert event["amount_fen"] == 100_000  # only what can be paid is funded


# -- bank results ----------------------------------------------------------------------------------------------------


async def test_wrong_checksum_and_unknown_lines_apply_nothing(start_service, roles):
    async with start_service("benefits") as benefits:
        run, file, parsed = await _issued_file(benefits, roles)
        good = [(ln.line_no, ln.payroll_line_id, "paid", None) for ln in parsed.lines]

        wrong = await post_results(benefits, roles, file["id"], result_csv(file["id"], "0" * 64, good))
        assert wrong.status_code == 422 and error_code(wrong) == "BANK_FILE_CHECKSUM_MISMATCH"

        stranger = new_event_id()
        unknown = [*good[:2], (4, stranger, "paid", None), (3, new_event_id(), "failed", "户名不符")]
        refused = await post_results(benefits, roles, file["id"], result_csv(file["id"], file["checksum"], unknown))
        assert refused.status_code == 422 and error_code(refused) == "UNKNOWN_BANK_FILE_LINES"
        named = refused.json()["error"]["details"]["unknown"]
        assert [u["line_no"] for u in named] == [4, 3] and named[0]["payroll_line_id"] == stranger
        assert stranger in refused.json()["error"]["message"]

        # JSON form: a duplicate line, a failure without its reason
        dup = await benefits.post(f"/payroll/bank-files/{file['id']}/results", headers=roles["bank"],
                                  json={"checksum": file["checksum"],
                                        "lines": [{"line_no": 1, "payroll_line_id": good[0][1], "result": "paid"}] * 2})
        assert dup.status_code == 422 and error_code(dup) == "DUPLICATE_RESULT_LINES"
        no_reason = await benefits.post(f"/payroll/bank-files/{file['id']}/results", headers=roles["bank"],
                                        json={"checksum": file["checksum"], "lines": [
                                            {"line_no": 1, "payroll_line_id": good[0][1], "result": "failed"}]})
        assert no_reason.status_code == 422
        other_file = await post_results(benefits, roles, file["id"],
                                        result_csv(new_event_id(), file["checksum"], good))
        assert other_file.status_code == 422 and error_code(other_file) == "BANK_FILE_MISMATCH"
        assert statuses(benefits, run["id"]) == ["in_file"] * 3
        assert outbox(benefits, "benefits.payments.settled.v1") == []


async def test_double_results_are_idempotent_or_conflicts(start_service, roles):
    async with start_service("benefits") as benefits:
        run, file, parsed = await _issued_file(benefits, roles)
        [one, two, three] = parsed.lines
        first = await benefits.post(f"/payroll/bank-files/{file['id']}/results", headers=roles["bank"], json={
            "checksum": file["checksum"].upper(),
            "lines": [{"line_no": 1, "payroll_line_id": one.payroll_line_id, "result": "paid"},
                      {"line_no": 2, "payroll_line_id": two.payroll_line_id, "result": "failed", "reason": "账号错误"}]})
        assert first.status_code == 200, first.text
        assert (first.json()["applied"], first.json()["file_status"]) == (2, "issued")

        # the same results again: nothing new, no event
        same = await post_results(benefits, roles, file["id"], result_csv(file["id"], file["checksum"], [
            (1, one.payroll_line_id, "paid", None), (2, two.payroll_line_id, "failed", "账号错误")]))
        assert same.status_code == 200 and (same.json()["applied"], same.json()["unchanged"]) == (0, 2)
        assert len(outbox(benefits, "benefits.payments.settled.v1")) == 1

        # a different result for a settled line: 409, and the rest of that import is not applied either
        flipped = await post_results(benefits, roles, file["id"], result_csv(file["id"], file["checksum"], [
            (3, three.payroll_line_id, "paid", None), (1, one.payroll_line_id, "failed", "退回")]))
        assert flipped.status_code == 409 and error_code(flipped) == "BANK_RESULT_CONFLICT"
        assert flipped.json()["error"]["details"]["conflicts"][0]["line_no"] == 1
        assert statuses(benefits, run["id"]) == ["failed", "in_file", "paid"]

        rest = await post_results(benefits, roles, file["id"], result_csv(file["id"], file["checksum"], [
            (3, three.payroll_line_id, "paid", None)]))
        assert rest.json()["file_status"] == "settled" and rest.json()["run_status"] == "approved"


async def test_nothing_is_paid_twice(start_service, roles, monkeypatch):
    async with start_service("benefits") as benefits:
        run, file, parsed = await _issued_file(benefits, roles, persons=2)
        [paid_line, failed_line] = parsed.lines
        await post_results(benefits, roles, file["id"], result_csv(file["id"], file["checksum"], [
            (1, paid_line.payroll_line_id, "paid", None), (2, failed_line.payroll_line_id, "failed", "账户冻结")]))
        with Session(engine_of(benefits)) as session:
            person_id = session.get(PayrollLine, failed_line.payroll_line_id).person_id
            paid_person = session.get(PayrollLine, paid_line.payroll_line_id).person_id
        add_account(benefits, person_id, 99, holder=failed_line.holder_name)
        add_account(benefits, paid_person, 98, holder=paid_line.holder_name)  # a new account changes nothing paid

        # the database-level guard: a line moves only from the status expected, or nothing moves at all
        with Session(engine_of(benefits)) as session:
            with pytest.raises(Conflict) as raised:
                service._move_lines(session, [failed_line.payroll_line_id, paid_line.payroll_line_id],
                                    "failed", "in_file")
            assert raised.value.code == "CONCURRENT_CHANGE"
            session.rollback()
        # a line settled by someone else between the re-issue's read and its update: the whole re-issue fails
        real_move = service._move_lines

        def racing_move(session, ids, from_status, to_status, **values):  # noqa: ANN001, ANN202
            session.execute(update(PayrollLine).where(PayrollLine.id.in_(ids)).values(status="paid"))
            return real_move(session, ids, from_status, to_status, **values)

        monkeypatch.setattr(service, "_move_lines", racing_move)
        raced = await benefits.post(f"/payroll/runs/{run['id']}/reissue", headers=roles["cashier"])
        assert raced.status_code == 409 and error_code(raced) == "CONCURRENT_CHANGE"
        monkeypatch.setattr(service, "_move_lines", real_move)
        assert statuses(benefits, run["id"]) == ["failed", "paid"]
        assert (await benefits.get(f"/payroll/runs/{run['id']}", headers=roles["cashier"])).json()["bank_files"] == 1

        # the re-issue carries only the failed line, to the corrected account
        second = (await benefits.post(f"/payroll/runs/{run['id']}/reissue", headers=roles["cashier"])).json()["file"]
        second_lines = bankfile.parse_payment_file(await download(benefits, roles, second["id"])).lines
        assert [(ln.payroll_line_id, ln.account_no) for ln in second_lines] == \
            [(failed_line.payroll_line_id, make_card(99))]
        again = await benefits.post(f"/payroll/runs/{run['id']}/reissue", headers=roles["cashier"])
        assert again.status_code == 409 and error_code(again) == "NOTHING_TO_REISSUE"

        # the first file's result for the paid line cannot be turned into a failure to get it re-issued,
        # and the re-issued line's old result cannot become a payment
        for line_no, line_id, result in ((1, paid_line.payroll_line_id, "failed"),
                                         (2, failed_line.payroll_line_id, "paid")):
            flipped = await post_results(benefits, roles, file["id"], result_csv(file["id"], file["checksum"], [
                (line_no, line_id, result, "退回" if result == "failed" else None)]))
            assert flipped.status_code == 409 and error_code(flipped) == "BANK_RESULT_CONFLICT"
        await post_results(benefits, roles, second["id"], result_csv(second["id"], second["checksum"], [
            (1, failed_line.payroll_line_id, "paid", None)]))
        with Session(engine_of(benefits)) as session:
            in_files = dict(session.execute(select(BankFileLine.payroll_line_id, func.count())
                                            .group_by(BankFileLine.payroll_line_id)).all())
            paid = dict(session.execute(select(BankFileLine.payroll_line_id, func.count())
                                        .where(BankFileLine.result == "paid")
                                        .group_by(BankFileLine.payroll_line_id)).all())
        assert in_files == {paid_line.payroll_line_id: 1, failed_line.payroll_line_id: 2}
        assert paid == {paid_line.payroll_line_id: 1, failed_line.payroll_line_id: 1}


async def test_results_as_json_and_roles(start_service, roles, auth):
    async with start_service("benefits") as benefits:
        run, file, parsed = await _issued_file(benefits, roles, persons=1)
        body = {"checksum": file["checksum"], "lines": [
            {"line_no": 1, "payroll_line_id": parsed.lines[0].payroll_line_id, "result": "paid", "reason": None}]}
        cashier = await benefits.post(f"/payroll/bank-files/{file['id']}/results", headers=roles["cashier"],
                                      json=body)
        assert cashier.status_code == 403
        applied = await benefits.post(f"/payroll/bank-files/{file['id']}/results", headers=roles["bank"],
                                      content=json.dumps(body))
        assert applied.status_code == 200 and applied.json()["run_status"] == "paid"
        # full account numbers for the cashier and the bank, masked for the others
        assert (await benefits.get(f"/payroll/bank-files/{file['id']}/content",
                                   headers=roles["accountant"])).status_code == 403
        line = (await benefits.get(f"/payroll/runs/{run['id']}/lines", headers=roles["cashier"])).json()["items"][0]
        assert line["account_no"] == parsed.lines[0].account_no
        unknown = await benefits.post("/payroll/bank-files/nope/results", headers=roles["bank"], json=body)
        assert unknown.status_code == 404 and error_code(unknown) == "BANK_FILE_NOT_FOUND"


# -- what changes between approval and the bank file -----------------------------------------------------------------


def add_offset(client, person_id: str, line_id: str, amount_fen: int) -> None:  # noqa: ANN001
    """A recovery offset against a pending line, as recovery/service.py records it (payroll_offset)."""
    now = clock.utc_now()
    notice = RecoveryNotice(id=new_event_id(), person_id=person_id, amount_fen=amount_fen, recovered_fen=amount_fen,
                            deadline=date(2099, 1, 1), status="recovered", issued_at=now, issued_by="clerk.wang")
    with Session(engine_of(client)) as session:
        session.add(notice)
        session.flush()
        session.add(Recovery(id=new_event_id(), notice_id=notice.id, method="payroll_offset", amount_fen=amount_fen,
                             idempotency_key=f"payroll_offset#{notice.id}#{line_id}", reference=line_id,
                             recorded_at=now, recorded_by="clerk.wang"))
        session.commit()


async def test_suspensions_after_approval_are_held_back_and_offsets_deducted(start_service, roles):
    async with start_service("benefits") as benefits:
        people = {}
        for serial, key in enumerate(("normal", "suspended", "partly_offset", "fully_offset", "died", "fails"), 1):
            person = add_person(benefits, serial, name=f"领取人{serial}")
            add_account(benefits, person, serial, holder=f"领取人{serial}")
            people[key] = (person, add_entitlement(benefits, person, 300_000))
        run = (await run_payroll(benefits, roles["clerk"]))["run"]
        assert (run["lines"], run["total"]) == (6, "18000.00")
        await approved_and_funded(benefits, roles, run["id"])
        line_of = {ln.person_id: ln.id for ln in lines_of(benefits, run["id"])}

        # after approval: a suspension, a death reported, two recovery offsets
        set_entitlement(benefits, people["suspended"][1], status="suspended", suspended_reason="survival_overdue")
        with Session(engine_of(benefits)) as session:
            session.execute(update(BeneficiaryPerson).where(BeneficiaryPerson.person_id == people["died"][0])
                            .values(life_status="deceased", death_date=date(2025, 1, 9)))
            session.commit()
        add_offset(benefits, people["partly_offset"][0], line_of[people["partly_offset"][0]], 50_000)
        add_offset(benefits, people["fully_offset"][0], line_of[people["fully_offset"][0]], 300_000)

        issued = await benefits.post(f"/payroll/runs/{run['id']}/bank-files", headers=roles["cashier"])
        assert issued.status_code == 201, issued.text
        body = issued.json()
        held = {h["person_id"]: h["reason"].split()[0] for h in body["held_back"]}
        assert held == {people["suspended"][0]: "HELD_SUSPENDED", people["died"][0]: "HELD_DECEASED"}
        assert body["fully_offset_lines"] == 1
        file = body["file"]
        assert (file["lines"], file["total"], file["offset_total"]) == (3, "8500.00", "500.00")
        parsed = bankfile.parse_payment_file(await download(benefits, roles, file["id"]))
        amounts = {ln.payroll_line_id: ln.amount_fen for ln in parsed.lines}
        assert amounts == {line_of[people["normal"][0]]: 300_000, line_of[people["partly_offset"][0]]: 250_000,
                           line_of[people["fails"][0]]: 300_000}
        [event] = outbox(benefits, "benefits.payments.issued.v1")
        assert event["file_total_fen"] == 850_000
        # what the file does not pay of the approved total, for oversight's R5 (same transaction as the file)
        [retained] = outbox(benefits, "benefits.payroll.retained.v1")
        assert {k: retained[k] for k in ("run_id", "fund", "period", "file_id", "part", "parts")} == \
            {"run_id": run["id"], "fund": FUND, "period": PERIOD, "file_id": file["id"], "part": 1, "parts": 1}
        assert (retained["held_back_lines"], retained["held_back_fen"], retained["offset_lines"],
                retained["offset_fen"]) == (2, 600_000, 2, 350_000)
        assert sorted(retained["held_back"], key=lambda h: h["reason"]) == [
            {"payroll_line_id": line_of[people["died"][0]], "person_id": people["died"][0], "amount_fen": 300_000,
             "reason": "HELD_DECEASED"},
            {"payroll_line_id": line_of[people["suspended"][0]], "person_id": people["suspended"][0],
             "amount_fen": 300_000, "reason": "HELD_SUSPENDED"}]
        assert sorted(retained["offsets"], key=lambda o: o["offset_fen"]) == [
            {"payroll_line_id": line_of[people["partly_offset"][0]], "person_id": people["partly_offset"][0],
             "amount_fen": 300_000, "offset_fen": 50_000, "fully_offset": False},  # the file pays the net 2 500.00
            {"payroll_line_id": line_of[people["fully_offset"][0]], "person_id": people["fully_offset"][0],
             "amount_fen": 300_000, "offset_fen": 300_000, "fully_offset": True}]  # no bank line
        assert retained["_actor"]["id"] == "cashier.sun"
        status_of = {ln.person_id: ln.status for ln in lines_of(benefits, run["id"])}
        assert (status_of[people["suspended"][0]], status_of[people["died"][0]],
                status_of[people["fully_offset"][0]]) == ("withheld", "withheld", "paid")

        # the one that fails cannot be re-issued once the person is recorded dead before the month
        fails_line = line_of[people["fails"][0]]
        results = [(ln.line_no, ln.payroll_line_id, "failed" if ln.payroll_line_id == fails_line else "paid",
                    "户名不符" if ln.payroll_line_id == fails_line else None) for ln in parsed.lines]
        settled = (await post_results(benefits, roles, file["id"],
                                      result_csv(file["id"], file["checksum"], results))).json()
        assert (settled["paid_total"], settled["returned_total"]) == ("5500.00", "3000.00")
        add_account(benefits, people["fails"][0], 66, holder="领取人6")
        with Session(engine_of(benefits)) as session:
            session.execute(update(BeneficiaryPerson).where(BeneficiaryPerson.person_id == people["fails"][0])
                            .values(life_status="deceased", death_date=date(2025, 2, 1)))
            session.commit()
        refused = await benefits.post(f"/payroll/runs/{run['id']}/reissue", headers=roles["cashier"])
        assert refused.status_code == 409
        assert refused.json()["error"]["details"]["not_reissued"][0]["reason"].startswith("HELD_DECEASED")

        # R5 from benefits' side: approved = paid + returned + held back + offset
        final = (await benefits.get(f"/payroll/runs/{run['id']}", headers=roles["auditor"])).json()
        assert final["total"] == "18000.00"
        # and from the events oversight receives: 5 500.00 paid + 3 000.00 returned + 6 000.00 + 3 500.00
        [settled_event] = outbox(benefits, "benefits.payments.settled.v1")
        paid_fen = sum(ln["amount_fen"] for ln in settled_event["lines"] if ln["result"] == "paid")
        returned_fen = sum(ln["amount_fen"] for ln in settled_event["lines"] if ln["result"] == "failed")
        assert paid_fen + returned_fen + retained["held_back_fen"] + retained["offset_fen"] == 1_800_000
        # the refused re-issue and asking for the first file again record no second retained event
        assert (await benefits.post(f"/payroll/runs/{run['id']}/bank-files", headers=roles["cashier"])
                ).status_code == 200
        assert len(outbox(benefits, "benefits.payroll.retained.v1")) == 1
        assert final["by_status"]["held_back"] == {"lines": 2, "total": "6000.00"}
        assert (final["withheld_lines"], final["lines"]) == (0, 6)
        assert (await benefits.get(f"/payroll/runs/{run['id']}/verify", headers=roles["auditor"])).json()["ok"]


async def test_everything_held_back_or_offset_still_tells_oversight(start_service, roles):
    """No line left for the bank: 409 NOTHING_TO_PAY, but the lines' new statuses and PayrollLinesRetained (no file)
    are committed; asking again changes nothing and records nothing."""
    async with start_service("benefits") as benefits:
        people = []
        for serial in range(1, 3):
            person = add_person(benefits, serial, name=f"领取人{serial}")
            add_account(benefits, person, serial, holder=f"领取人{serial}")
            people.append((person, add_entitlement(benefits, person, 200_000)))
        run = (await run_payroll(benefits, roles["clerk"]))["run"]
        await approved_and_funded(benefits, roles, run["id"])
        line_of = {ln.person_id: ln.id for ln in lines_of(benefits, run["id"])}
        set_entitlement(benefits, people[0][1], status="ended", end_period=PERIOD - 1)
        add_offset(benefits, people[1][0], line_of[people[1][0]], 200_000)

        for _ in range(2):
            refused = await benefits.post(f"/payroll/runs/{run['id']}/bank-files", headers=roles["cashier"])
            assert refused.status_code == 409 and error_code(refused) == "NOTHING_TO_PAY"
        [retained] = outbox(benefits, "benefits.payroll.retained.v1")
        assert (retained["file_id"], retained["held_back_fen"], retained["offset_fen"]) == (None, 200_000, 200_000)
        assert retained["held_back"] == [{"payroll_line_id": line_of[people[0][0]], "person_id": people[0][0],
                                          "amount_fen": 200_000, "reason": "HELD_ENDED"}]
        assert [(o["offset_fen"], o["fully_offset"]) for o in retained["offsets"]] == [(200_000, True)]
        assert outbox(benefits, "benefits.payments.issued.v1") == []
        assert (await benefits.get(f"/payroll/runs/{run['id']}", headers=roles["auditor"])).json()["status"] == "paid"


async def test_an_offset_recorded_while_the_file_is_made_refuses_the_file(start_service, roles, monkeypatch):
    """PostgreSQL: an offset committed after the file read the offsets (the file's UPDATE waited for the line's row
    lock) is seen once every payable line has left pending: 409 CONCURRENT_CHANGE and nothing kept — never an offset
    counted as recovered while the file pays the line in full. (SQLite serialises the two; the first read is made
    stale here.)"""
    async with start_service("benefits") as benefits:
        person = add_person(benefits, 1, name="领取人1")
        add_account(benefits, person, 1, holder="领取人1")
        add_entitlement(benefits, person, 300_000)
        run = (await run_payroll(benefits, roles["clerk"]))["run"]
        await approved_and_funded(benefits, roles, run["id"])
        [line] = lines_of(benefits, run["id"])
        add_offset(benefits, person, line.id, 50_000)
        real, reads = service._offsets, []

        def stale_first(session, run_id, line_ids):  # noqa: ANN001, ANN202
            reads.append(run_id)
            return {} if len(reads) == 1 else real(session, run_id, line_ids)

        monkeypatch.setattr(service, "_offsets", stale_first)
        refused = await benefits.post(f"/payroll/runs/{run['id']}/bank-files", headers=roles["cashier"])
        assert refused.status_code == 409 and error_code(refused) == "CONCURRENT_CHANGE"
        assert [ln.status for ln in lines_of(benefits, run["id"])] == ["pending"]
        assert outbox(benefits, "benefits.payments.issued.v1") == []
        monkeypatch.setattr(service, "_offsets", real)
        issued = await benefits.post(f"/payroll/runs/{run['id']}/bank-files", headers=roles["cashier"])
        assert issued.status_code == 201, issued.text
        assert (issued.json()["file"]["total"], issued.json()["file"]["offset_total"]) == ("2500.00", "500.00")


@pytest.mark.unit
def test_retained_lines_come_in_parts_of_at_most_a_thousand(monkeypatch):
    """2 500 held back and 700 offset lines: four parts of ≤ 1 000 lines, held back first, the run's totals in each."""
    from types import SimpleNamespace  # noqa: PLC0415

    recorded = []
    monkeypatch.setattr(service, "record_event", lambda session, payload, **kw: recorded.append((payload, kw)))
    run = SimpleNamespace(id="run-1", fund=FUND, period=PERIOD)
    held = [(SimpleNamespace(id=f"h{i:04}", person_id=f"p{i}", amount_fen=100), "HELD_SUSPENDED") for i in range(2500)]
    offsets = [(SimpleNamespace(id=f"o{i:04}", person_id=f"q{i}", amount_fen=100), 40 if i % 2 else 100)
               for i in range(700)]
    service._record_retained(None, run, "file-1", held, offsets)
    parts = [p for p, _ in recorded]
    assert [(p.part, p.parts, len(p.held_back), len(p.offsets)) for p in parts] == \
        [(1, 4, 1000, 0), (2, 4, 1000, 0), (3, 4, 500, 500), (4, 4, 0, 200)]
    assert {(p.held_back_lines, p.held_back_fen, p.offset_lines, p.offset_fen) for p in parts} == \
        {(2500, 250_000, 700, 350 * 40 + 350 * 100)}
    assert sum(o.fully_offset for p in parts for o in p.offsets) == 350
    assert {kw["subject"] for _, kw in recorded} == {"run-1"}
    service._record_retained(None, run, "file-1", [], [])  # nothing held back or offset: no event
    assert len(recorded) == 4


async def test_parallel_requests_make_one_run_one_file_one_reissue(start_service, roles):
    async with start_service("benefits") as benefits:
        for serial in range(1, 4):
            person = add_person(benefits, serial, name=f"领取人{serial}")
            add_account(benefits, person, serial, holder=f"领取人{serial}")
            add_entitlement(benefits, person, 100_000 * serial)
        runs = await asyncio.gather(*[benefits.post("/payroll/runs", json={"fund": FUND, "period": PERIOD},
                                                    headers=roles["clerk"]) for _ in range(4)])
        assert sorted(r.status_code for r in runs) == [200, 200, 200, 201]
        assert len({r.json()["run"]["id"] for r in runs}) == 1
        run_id = runs[0].json()["run"]["id"]
        assert len(lines_of(benefits, run_id)) == 3
        await approved_and_funded(benefits, roles, run_id)

        files = await asyncio.gather(*[benefits.post(f"/payroll/runs/{run_id}/bank-files", headers=roles["cashier"])
                                       for _ in range(3)])
        assert sorted(r.status_code for r in files) == [200, 200, 201]
        assert len({r.json()["file"]["id"] for r in files}) == 1
        file = files[0].json()["file"]
        parsed = bankfile.parse_payment_file(await download(benefits, roles, file["id"]))
        text = result_csv(file["id"], file["checksum"],
                          [(ln.line_no, ln.payroll_line_id, "failed", "账户已销户") for ln in parsed.lines])
        settled = await asyncio.gather(*[post_results(benefits, roles, file["id"], text) for _ in range(3)])
        assert sorted(r.json()["applied"] for r in settled) == [0, 0, 3]
        assert len(outbox(benefits, "benefits.payments.settled.v1")) == 1

        with Session(engine_of(benefits)) as session:
            persons = list(session.execute(select(BeneficiaryPerson)).scalars())
        for serial, person in enumerate(persons, start=10):
            add_account(benefits, person.person_id, serial, holder=person.name)
        reissues = await asyncio.gather(*[benefits.post(f"/payroll/runs/{run_id}/reissue", headers=roles["cashier"])
                                          for _ in range(3)])
        assert sorted(r.status_code for r in reissues) == [201, 409, 409]
        with Session(engine_of(benefits)) as session:
            assert session.execute(select(func.count()).select_from(BankFileLine)).scalar_one() == 6


@pytest.mark.unit
def test_a_result_file_that_is_not_csv_is_a_clear_refusal():
    """A carriage return inside an unquoted field makes the csv module raise: a clear refusal, not a 500."""
    from services.kernel.errors import DomainError

    with pytest.raises(DomainError) as refused:
        bankfile.parse_result_file('+C"\t.[\x10N&RX\x12:\r3n')
    assert refused.value.code == "BANK_RESULT_FILE_INVALID"
    file_id, checksum, lines = bankfile.parse_result_file('SIFUND-RES-1,f1,c1\r\n1,line-1,failed,"户名\r不符"\r\n')
    assert (file_id, checksum, lines[0]["reason"]) == ("f1", "c1", "户名\r不符")
