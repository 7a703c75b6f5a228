"""The public page where anyone holding an official document checks that it is genuine and unaltered: by its
number and verification code, or by uploading the file (its SHA-256 must be that of the document issued). No token. The gateway asks every service's ``/documents/verification/…`` at once (the issuing service is
the one that knows the document) and answers about the document only: title, number, date, hash, never the person
or employer it concerns.

``GET /verify`` is the page (a plain form, no script), ``POST /verify`` its answer as a page; programs use
``POST /verify/documents`` (JSON) and ``POST /verify/documents/file`` (multipart)."""

import asyncio
import hashlib
import html
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import HTMLResponse
from pydantic import Field

from gateway.upstream import UpstreamDep, Upstreams, UpstreamsDep
from services.kernel.auth import public
from services.kernel.documents.endpoints import CodeCheck
from services.kernel.documents.endpoints import Verification as ServiceVerification
from services.kernel.documents.registry import presented_reference
from services.kernel.errors import BadRequest, DependencyUnavailable, TooLarge
from services.kernel.openapi import refusals
from services.kernel.settings import SERVICES

router = APIRouter(tags=["verification"], dependencies=[public()])

MAX_DOCUMENT_BYTES = 10 * 1024 * 1024  # an issued document is a few dozen kB; a scan-sized upload is refused
CALL_TIMEOUT_SECONDS = 5.0

RESULT_TEXT = {
    "genuine": "真实有效：本平台签发的文书，内容未被改动。",
    "altered": "文件已被改动：该文书编号确由本平台签发，但所提交文件与签发时的文件不一致。",
    "not_found": "未能核验：本平台没有签发与之相符的文书（请核对文书编号和验证码）。",
}


class Verification(ServiceVerification):
    """The issuing service's answer, said in words, with the uploaded file's own hash."""

    message: str
    presented_sha256: str | None = Field(default=None, description="SHA-256 of the uploaded file")


async def _ask(client: httpx.AsyncClient, upstreams: Upstreams, service: str, path: str,
               body: dict[str, Any]) -> dict[str, Any] | None:
    """The service's answer, or None when none of its replicas answered it."""
    for url in upstreams.order(service):
        try:
            response = await client.post(f"{url}{path}", json=body, timeout=CALL_TIMEOUT_SECONDS)
        except httpx.HTTPError:
            upstreams.failed(url)
            continue
        upstreams.answered(url)
        if response.status_code == 200:
            return response.json()
        if response.status_code == 422:
            raise BadRequest("INVALID_VERIFICATION_REQUEST", "核验信息格式不正确")
    return None


async def fan_out(client: httpx.AsyncClient, upstreams: Upstreams, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """The issuing service's answer: ``genuine`` from one service wins, then ``altered``; ``not_found`` only when
    every service answered so (a service that did not answer might be the issuer: 503, never a false "not found")."""
    answers = await asyncio.gather(*(_ask(client, upstreams, s, path, body) for s in SERVICES))
    for result in ("genuine", "altered"):
        found = next((a for a in answers if a is not None and a.get("result") == result), None)
        if found is not None:
            return found
    silent = [s for s, a in zip(SERVICES, answers, strict=True) if a is None]
    if silent:
        raise DependencyUnavailable(", ".join(silent), "未响应", "暂时无法完成文书核验，请稍后再试")
    return {"result": "not_found"}


def _verification(answer: dict[str, Any], presented_sha256: str | None = None) -> Verification:
    return Verification(result=answer["result"], message=RESULT_TEXT[answer["result"]],
                        document=answer.get("document"), presented_sha256=presented_sha256)


async def verify_code(client: httpx.AsyncClient, upstreams: Upstreams, number: str, code: str) -> Verification:
    answer = await fan_out(client, upstreams, "/documents/verification/code",
                           {"number": number.strip(), "verification_code": code.strip()})
    return _verification(answer)


async def verify_file(client: httpx.AsyncClient, upstreams: Upstreams, upload: UploadFile) -> Verification:
    data = await upload.read(MAX_DOCUMENT_BYTES + 1)
    if len(data) > MAX_DOCUMENT_BYTES:
        raise TooLarge("DOCUMENT_TOO_LARGE", f"文件超过 {MAX_DOCUMENT_BYTES // (1024 * 1024)} MB，不是本平台签发的文书")
    if not data:
        raise BadRequest("EMPTY_DOCUMENT", "上传的文件为空")
    sha256 = hashlib.sha256(data).hexdigest()
    answer = await fan_out(client, upstreams, "/documents/verification/hash",
                           {"sha256": sha256, "reference": presented_reference(data)})
    return _verification(answer, sha256)


@router.post("/verify/documents", response_model=Verification,
             summary="Verify a document by its number and verification code (public)")
async def verify_by_code(body: CodeCheck, client: UpstreamDep, upstreams: UpstreamsDep) -> Verification:
    return await verify_code(client, upstreams, body.number, body.verification_code)


@router.post("/verify/documents/file", response_model=Verification,
             summary="Verify an uploaded document file: genuine and unaltered when its SHA-256 is the issued one "
                     "(public)")
async def verify_by_file(file: Annotated[UploadFile, File(description="the PDF as received")],
                         client: UpstreamDep, upstreams: UpstreamsDep) -> Verification:
    return await verify_file(client, upstreams, file)


# -- the page --------------------------------------------------------------------------------------------------------

_FORM = """<form method="post" action="/verify" enctype="multipart/form-data">
<fieldset><legend>按文书编号和验证码核验</legend>
<p><label>文书编号 <input name="number" maxlength="80"></label></p>
<p><label>验证码 <input name="verification_code" maxlength="40"></label></p>
</fieldset>
<fieldset><legend>或上传文书文件（PDF）核验是否被改动</legend>
<p><input type="file" name="file" accept="application/pdf"></p>
</fieldset>
<p><button type="submit">核验</button></p>
</form>"""


def _page(body: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(
        "<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>社会保险文书真伪核验</title></head>"
        f"<body><h1>社会保险文书真伪核验</h1>{body}{_FORM}"
        "<p>本页只显示文书本身的信息（名称、编号、签发日期、文件摘要），不显示任何个人信息。</p></body></html>",
        status_code=status_code)


def _result_html(verification: Verification) -> str:
    rows = [f"<p><strong>{html.escape(verification.message)}</strong></p>"]
    document = verification.document
    if document is not None:
        facts = [("文书名称", document.title), ("文书编号", document.number), ("签发日期", document.issued_on),
                 ("文件 SHA-256", document.sha256)]
        rows.append("<dl>" + "".join(f"<dt>{label}</dt><dd>{html.escape(value)}</dd>"
                                     for label, value in facts if value) + "</dl>")
    if verification.presented_sha256:
        rows.append(f"<p>所提交文件的 SHA-256：{verification.presented_sha256}</p>")
    return f"<section id=\"result\" data-result=\"{verification.result}\">{''.join(rows)}</section>"


@router.get("/verify", response_class=HTMLResponse, summary="The public verification page")
async def verification_page() -> HTMLResponse:
    return _page("")


# The page answers its refusals as the page again (text/html); a request the framework cannot parse is refused in
# the platform's JSON error body before it reaches the page.
_PAGE_REFUSALS: dict[int | str, dict[str, Any]] = {
    status: {**declared, "content": {**declared["content"], "text/html": {}}}
    for status, declared in refusals(400, 413, 503).items()}


@router.post("/verify", response_class=HTMLResponse, responses=_PAGE_REFUSALS,
             summary="The public verification page's answer")
async def verification_answer(client: UpstreamDep, upstreams: UpstreamsDep,
                              number: Annotated[str, Form(max_length=80)] = "",
                              verification_code: Annotated[str, Form(max_length=40)] = "",
                              file: Annotated[UploadFile | None, File()] = None) -> HTMLResponse:
    try:
        if file is not None and file.filename:
            verification = await verify_file(client, upstreams, file)
        elif number.strip() and verification_code.strip():
            verification = await verify_code(client, upstreams, number, verification_code)
        else:
            return _page("<p><strong>请填写文书编号和验证码，或选择要核验的文件。</strong></p>", 400)
    except (BadRequest, TooLarge, DependencyUnavailable) as error:
        return _page(f"<p><strong>{html.escape(error.message)}</strong></p>", error.status)
    return _page(_result_html(verification))
