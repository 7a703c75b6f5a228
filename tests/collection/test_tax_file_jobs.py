"""A tax-line file beyond one request (services/collection/payments/jobs.py): uploaded whole, accepted with 202 and
a job id, applied in batches of 10 000 lines through the batch service, the same file again is the same job."""

import asyncio
import tempfile
from pathlib import Path

from sqlalchemy import func, select
from sqlmodel import Session

from services.collection.models import TaxPayment, TaxPaymentBatch
from services.kernel.models import Job
from tests.support.payments import add_employer, tax_headers
from tests.support.registry import engine_of

HEADER = "tax_line_id,payer_uscc,fund,period,employer_amount,individual_amount,method,voucher_no,paid_date"


def tax_file(uscc: str, n: int, *, cash: set[int]) -> bytes:
    rows = [HEADER] + [f"F-{i},{uscc},UNEMP,202601,10.00,0.00,{'现金' if i in cash else 'online'},V-{i},2026-02-01"
                       for i in range(n)]
    return ("\n".join(rows) + "\n").encode("utf-8")


def count(client, model) -> int:  # noqa: ANN001
    with Session(engine_of(client)) as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


async def finished(client, job_id: str, headers: dict, seen: list[dict]) -> dict:  # noqa: ANN001
    deadline = asyncio.get_running_loop().time() + 180
    while asyncio.get_running_loop().time() < deadline:
        body = (await client.get(f"/jobs/{job_id}", headers=headers)).json()
        seen.append(body)
        if body["status"] in ("succeeded", "failed"):
            return body
        await asyncio.sleep(0.02)
    raise AssertionError(seen[-1])


async def test_a_tax_file_of_12_000_lines_runs_as_a_job_in_batches_of_10_000(start_service, settings, auth):
    tax = tax_headers(settings)
    async with start_service("collection") as client:
        _, uscc = add_employer(client)
        data = tax_file(uscc, 12_000, cash={5, 11_000})
        response = await client.post("/tax-payments/files", headers=tax,
                                     files={"file": ("2026-02.csv", data, "text/csv")})
        assert response.status_code == 202, response.text
        job = response.json()
        assert response.headers["location"] == f"/jobs/{job['id']}" and job["kind"] == "collection.tax_file"

        seen: list[dict] = []
        done = await finished(client, job["id"], tax, seen)
        assert done["status"] == "succeeded", done
        assert (done["rows_total"], done["rows_done"], done["rows_rejected"]) == (12_000, 12_000, 2)
        result = done["result"]
        assert [(b["first_line"], b["last_line"], b["lines"], b["rejected"]) for b in result["batches"]] == [
            (2, 10_001, 10_000, 1), (10_002, 12_001, 2_000, 1)]
        assert result["totals"]["accepted"] == 11_998 and result["rejections_by_code"] == {
            "REFUSED_PAYMENT_METHOD": 2}
        assert {r["line_no"] for r in result["rejections"]} == {7, 11_002}
        assert count(client, TaxPayment) == 11_998 and count(client, TaxPaymentBatch) == 2

        again = await client.post("/tax-payments/files", headers=tax, files={"file": ("again.csv", data, "text/csv")})
        assert again.status_code == 202 and again.json()["id"] == job["id"]
        assert count(client, TaxPayment) == 11_998 and count(client, TaxPaymentBatch) == 2

        other_bureau = tax_headers(settings, subject="tax.other")
        assert (await client.get(f"/jobs/{job['id']}", headers=other_bureau)).status_code == 404
        assert (await client.get(f"/jobs/{job['id']}", headers=auth("agency_clerk"))).status_code == 200

        wrong = await client.post("/tax-payments/files", headers=tax,
                                  files={"file": ("w.csv", "税务明细编号,险种\nW-1,PEN_EMP\n".encode("gbk"))})
        assert wrong.status_code == 422 and wrong.json()["error"]["code"] == "IMPORT_COLUMNS_INVALID"


async def test_a_file_past_the_upload_limit_is_refused_with_413_and_leaves_nothing(start_service, make_settings,
                                                                                  nats_server):
    """The service's own limit (``max_upload_bytes``, the gateway's too): the upload is spooled to disk a part at a
    time and refused as soon as it passes the limit; no job, no temporary file left behind."""
    settings = make_settings(nats_server.url, max_upload_bytes=5000)
    tax = tax_headers(settings)
    leftovers = set(Path(tempfile.gettempdir()).glob("sifund-upload-*"))
    async with start_service("collection", settings) as client:
        _, uscc = add_employer(client)
        big = await client.post("/tax-payments/files", headers=tax,
                                files={"file": ("big.csv", tax_file(uscc, 200, cash=set()), "text/csv")})
        assert big.status_code == 413 and big.json()["error"]["code"] == "FILE_TOO_LARGE", big.text
        assert count(client, Job) == 0
        small = await client.post("/tax-payments/files", headers=tax,
                                  files={"file": ("small.csv", tax_file(uscc, 20, cash=set()), "text/csv")})
        assert small.status_code == 202, small.text
    assert set(Path(tempfile.gettempdir()).glob("sifund-upload-*")) <= leftovers
