"""The bank's result file uploaded by the cashier (services/benefits/payroll/result_files.py): refused at once when it
is not this payment file's, otherwise a background job applying the lines through the bank route's own service
function, each bad row set aside with its reason; the same file again is the same job; audited as the uploader's."""

import asyncio
import json
from io import BytesIO

import pytest
from openpyxl import Workbook
from sqlalchemy import select
from sqlmodel import Session

from services.kernel.models import AuditEntry
from services.kernel.money import fen_to_yuan
from services.kernel.settings_sections import JobSettings
from tests.support.payroll import issued_file, payroll_roles, post_results, result_csv, statuses
from tests.support.registry import engine_of, error_code, outbox


@pytest.fixture
def roles(auth):  # noqa: ANN001, ANN201
    return payroll_roles(auth)


async def finished(client, job_id: str, headers: dict) -> dict:  # noqa: ANN001
    deadline = asyncio.get_running_loop().time() + 120
    while asyncio.get_running_loop().time() < deadline:
        body = (await client.get(f"/jobs/{job_id}", headers=headers)).json()
        if body["status"] in ("succeeded", "failed"):
            return body
        await asyncio.sleep(0.02)
    raise AssertionError(body)


async def upload(client, headers: dict, file_id: str, data: bytes, name: str = "回盘.csv", **extra):  # noqa: ANN001, ANN201
    return await client.post(f"/payroll/bank-files/{file_id}/result-files", headers={**headers, **extra},
                             files={"file": (name, data, "text/csv")})


def xlsx(rows: list[list]) -> bytes:
    book = Workbook()
    for row in rows:
        book.active.append(row)
    out = BytesIO()
    book.save(out)
    return out.getvalue()


async def test_a_result_file_uploaded_by_the_cashier_is_applied_row_by_row(start_service, settings, roles):
    chunked = settings.model_copy(update={"jobs": JobSettings(chunk_rows=2)})
    async with start_service("benefits", chunked) as benefits:
        run, file, parsed = await issued_file(benefits, roles, persons=4)
        [one, two, three, four] = parsed.lines
        # the bank system posted line 1 already: the upload's same result is a no-op, not a second payment
        first = await post_results(benefits, roles, file["id"], result_csv(file["id"], file["checksum"], [
            (1, one.payroll_line_id, "paid", None)]))
        assert first.status_code == 200, first.text
        text = result_csv(file["id"], file["checksum"], [
            (1, one.payroll_line_id, "paid", None), (2, two.payroll_line_id, "failed", "账户已销户"),
            (3, "no-such-line", "paid", None), (3, three.payroll_line_id, "失败", None),
            (4, four.payroll_line_id, "成功", None)])
        response = await upload(benefits, roles["cashier"], file["id"], text.encode("gbk"))
        assert response.status_code == 202, response.text
        job = response.json()
        assert job["kind"] == "benefits.bank_result_file" and response.headers["location"] == f"/jobs/{job['id']}"

        done = await finished(benefits, job["id"], roles["cashier"])
        assert done["status"] == "succeeded", done
        assert (done["rows_total"], done["rows_done"], done["rows_rejected"]) == (5, 5, 2)
        result = done["result"]
        assert (result["applied"], result["unchanged"], result["paid_lines"], result["failed_lines"]) == (2, 1, 1, 1)
        assert (result["paid_total"], result["returned_total"]) == (
            str(fen_to_yuan(four.amount_fen)), str(fen_to_yuan(two.amount_fen)))
        assert result["rejections_by_code"] == {"UNKNOWN_BANK_FILE_LINES": 1, "BANK_RESULT_LINE_INVALID": 1}
        assert [(r["row_no"], r["code"]) for r in result["rejections"]] == [
            (5, "BANK_RESULT_LINE_INVALID"), (4, "UNKNOWN_BANK_FILE_LINES")]
        assert "原因" in result["rejections"][0]["message"]
        assert (result["file_status"], result["awaiting_result"]) == ("issued", 1)
        assert statuses(benefits, run["id"]) == ["failed", "in_file", "paid", "paid"]

        # the same file again is the same job; the auditor reads it; the bank system may not upload
        again = await upload(benefits, roles["cashier"], file["id"], text.encode("gbk"), name="again.csv")
        assert again.status_code == 202 and again.json()["id"] == job["id"]
        assert (await benefits.get(f"/jobs/{job['id']}", headers=roles["auditor"])).status_code == 200
        assert (await upload(benefits, roles["bank"], file["id"], text.encode())).status_code == 403
        assert (await upload(benefits, roles["clerk"], file["id"], text.encode())).status_code == 403

        # audited as the cashier's upload, naming the job and the file's SHA-256
        with Session(engine_of(benefits)) as session:
            entries = session.execute(select(AuditEntry).where(AuditEntry.action == "payroll.bank_results")
                                      ).scalars().all()
        uploaded = [e for e in entries if json.loads(e.detail).get("via") == "upload"]
        assert uploaded and {e.actor_id for e in uploaded} == {"cashier.sun"}
        assert {json.loads(e.detail)["file_sha256"] for e in uploaded} == {done["file_sha256"]}
        assert len(outbox(benefits, "benefits.payments.settled.v1")) == 1 + len(uploaded)

        # the last line as an Excel sheet with a column row: the file settles
        sheet = xlsx([["SIFUND-RES-1", file["id"], file["checksum"]], ["序号", "发放明细编号", "结果", "原因"],
                      [3, three.payroll_line_id, "paid", None]])
        last = await upload(benefits, roles["cashier"], file["id"], sheet, name="回盘.xlsx")
        assert last.status_code == 202, last.text
        settled = await finished(benefits, last.json()["id"], roles["cashier"])
        assert settled["result"]["file_status"] == "settled" and settled["result"]["applied"] == 1


async def test_a_result_file_of_another_payment_file_is_refused_before_any_job(start_service, roles):
    async with start_service("benefits") as benefits:
        run, file, parsed = await issued_file(benefits, roles, persons=1)
        rows = [(1, parsed.lines[0].payroll_line_id, "paid", None)]
        cashier = roles["cashier"]
        wrong_sum = await upload(benefits, cashier, file["id"], result_csv(file["id"], "0" * 64, rows).encode())
        assert wrong_sum.status_code == 422 and error_code(wrong_sum) == "BANK_FILE_CHECKSUM_MISMATCH"
        other = await upload(benefits, cashier, file["id"], result_csv("F-OTHER", file["checksum"], rows).encode())
        assert other.status_code == 422 and error_code(other) == "BANK_FILE_MISMATCH"
        not_results = await upload(benefits, cashier, file["id"], "序号,结果\n1,paid\n".encode())
        assert not_results.status_code == 422 and error_code(not_results) == "BANK_RESULT_FILE_INVALID"
        head_only = await upload(benefits, cashier, file["id"], f"SIFUND-RES-1,{file['id']},{file['checksum']}\n".encode())
        assert head_only.status_code == 422 and error_code(head_only) == "IMPORT_FILE_EMPTY"
        unknown = await upload(benefits, cashier, "no-such-file", result_csv("no-such-file", "0" * 64, rows).encode())
        assert unknown.status_code == 404
        assert (await benefits.get("/jobs", headers=cashier)).json()["items"] == []
        assert statuses(benefits, run["id"]) == ["in_file"]
