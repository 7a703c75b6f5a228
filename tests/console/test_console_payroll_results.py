"""The bank's result file uploaded by the cashier on a run's page (gateway/console/payroll.py), without a browser, on
the package's platform (conftest.py): a run with lines to pay (beneficiaries written into the benefits database as
tests/support/payroll.py writes them), computed, approved, funded and its bank file issued through the API; on the
console the upload form is the cashier's only, a result file of another payment file is refused in the API's words,
and the right one runs as a job followed on its page to its result, the bank's reason then shown on the run."""

import re
from types import SimpleNamespace

import httpx
import pytest

from services.benefits.payroll import bankfile
from services.kernel.clock import china_today
from services.kernel.db import make_engine
from tests.support.benefits import add_account
from tests.support.console import api_headers, console_sign_in, csrf_of
from tests.support.payroll import add_entitlement, add_person
from tests.support.e2e import wait_for

pytestmark = pytest.mark.once
TIMEOUT = 180.0
FUND = "PEN_EMP"


async def issued_file(platform) -> tuple[str, dict, bankfile.PaymentFile]:  # noqa: ANN001
    """(the run's console page, the bank file, its content parsed) of a run of two beneficiaries."""
    engine = make_engine(platform.settings.database_url("benefits"))
    benefits = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(engine=engine)))  # what engine_of reads
    for serial in (9101, 9102):
        person = add_person(benefits, serial, name=f"回盘人{serial}")
        add_account(benefits, person, serial, holder=f"回盘人{serial}")
        add_entitlement(benefits, person, 250_000 + serial, fund=FUND)
    engine.dispose()
    period = int(china_today().strftime("%Y%m"))
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as api:
        async def post(role: str, path: str, **kwargs) -> dict:  # noqa: ANN003
            response = await api.post(path, headers=await api_headers(platform, role), **kwargs)
            assert response.status_code in (200, 201), response.text
            return response.json()

        run = (await post("agency_clerk", "/api/benefits/payroll/runs", json={"fund": FUND, "period": period}))["run"]
        runs = f"/api/benefits/payroll/runs/{run['id']}"
        await post("agency_approver", f"{runs}/approve")
        await post("accountant", f"{runs}/funding-request")
        file = (await post("cashier", f"{runs}/bank-files"))["file"]
        content = await api.get(f"/api/benefits/payroll/bank-files/{file['id']}/content",
                                headers=await api_headers(platform, "cashier"))
    return f"/console/payroll/runs/{run['id']}", file, bankfile.parse_payment_file(content.text)


async def test_the_cashier_uploads_the_banks_result_file_and_follows_its_job(platform):
    url, file, parsed = await issued_file(platform)
    [paid, failed] = parsed.lines
    rows = [bankfile.ResultLine(paid.line_no, paid.payroll_line_id, "paid", None),
            bankfile.ResultLine(failed.line_no, failed.payroll_line_id, "failed", "账户已冻结"),
            bankfile.ResultLine(9, "not-in-this-file", "paid", None)]
    upload = f"/console/payroll/bank-files/{file['id']}/result-files"

    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as clerk:
        await console_sign_in(clerk, *platform.user_of("agency_clerk"))
        page = await clerk.get(url)
        assert page.status_code == 200 and 'id="result-upload-1"' not in page.text  # the cashier's
        refused = await clerk.post(upload, data={"csrf_token": csrf_of(page.text)},
                                   files={"file": ("r.csv", b"x", "text/csv")})
        assert refused.status_code == 403

    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as cashier:
        await console_sign_in(cashier, *platform.user_of("cashier"))
        page = await cashier.get(url)
        assert 'id="result-upload-1"' in page.text and 'enctype="multipart/form-data"' in page.text
        wrong = bankfile.render_result_file(file["id"], "0" * 64, rows)
        refused = await cashier.post(upload, data={"csrf_token": csrf_of(page.text)},
                                     files={"file": ("回盘.csv", wrong.encode(), "text/csv")})
        assert refused.status_code == 422 and "BANK_FILE_CHECKSUM_MISMATCH" in refused.text
        assert "校验值与代发文件不符" in refused.text

        right = bankfile.render_result_file(file["id"], file["checksum"], rows)
        accepted = await cashier.post(upload, data={"csrf_token": csrf_of(page.text)},
                                      files={"file": ("回盘.csv", right.encode(), "text/csv")})
        assert accepted.status_code == 303, accepted.text[:500]
        job_url = accepted.headers["location"]
        assert re.fullmatch(r"/console/jobs/benefits/[\w-]+", job_url)

        async def job_done() -> str | None:
            text = (await cashier.get(job_url)).text
            return text if 'id="job-result"' in text else None

        job = await wait_for(job_done, timeout=120, interval=0.2)
        assert "发放成功笔数" in job and "退回金额（元）" in job
        assert "第 4 行：该行不属于本代发文件" in job and "UNKNOWN_BANK_FILE_LINES" in job

        run = await cashier.get(url)
        failures = re.search(r'id="run-failures">.*?</table>', run.text, re.S)
        assert failures and "账户已冻结" in failures.group(0)
        assert 'id="result-upload-1"' not in run.text  # nothing left awaiting the bank's result
