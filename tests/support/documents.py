"""Official documents through the gateway: the four services under uvicorn on a real nats-server, the gateway in
front; the text of a PDF as pypdf extracts it; and the checks every document kind passes on the public page."""

import hashlib
import io
import re
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote, unquote

import httpx
from pypdf import PdfReader

from services.kernel.service_app import create_service_app
from services.kernel.settings import SERVICES
from sifund import services as catalogue
from tests.support.gateway import gateway_client, serve

CODE = re.compile(r"验证码\s*([2-9A-Z]{4}-[2-9A-Z]{4}-[2-9A-Z]{4})")


@dataclass
class Platform:
    gateway: httpx.AsyncClient
    # Per service, an object with ``.app`` (its FastAPI app, whose state holds the engine) for the data helpers
    # of tests/support that write a service's rows directly.
    services: dict[str, Any]


@asynccontextmanager
async def platform(make_settings, nats_url: str, *, down: tuple[str, ...] = ()) -> AsyncIterator[Platform]:  # noqa: ANN001
    """Every service but those ``down`` (their URL a loopback port nothing listens on), and the gateway."""
    async with AsyncExitStack() as stack:
        apps = {name: create_service_app(catalogue.spec(name), make_settings(nats_url))
                for name in SERVICES if name not in down}
        urls = {name: await stack.enter_async_context(serve(app)) for name, app in apps.items()}
        urls.update({name: f"http://127.0.0.1:{closed_port()}" for name in down})
        gateway = await stack.enter_async_context(gateway_client(make_settings(
            nats_url, **{f"{name}_url": url for name, url in urls.items()})))
        yield Platform(gateway, {name: SimpleNamespace(app=app) for name, app in apps.items()})


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pdf_text(pdf: bytes) -> str:
    """The document's text with all whitespace removed (line breaks fall where the layout wraps)."""
    reader = PdfReader(io.BytesIO(pdf))
    return "".join("".join(page.extract_text().split()) for page in reader.pages)


def issued(response: httpx.Response) -> tuple[bytes, str, str]:
    """(pdf, number, verification code) of an issuing endpoint's answer."""
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/pdf"
    pdf = response.content
    assert pdf.startswith(b"%PDF-")
    assert response.headers["x-document-sha256"] == hashlib.sha256(pdf).hexdigest()
    number = unquote(response.headers["x-document-number"])
    found = CODE.search(pdf_text(pdf))
    assert found is not None, "the verification code is printed on the document"
    return pdf, number, found.group(1)


def altered(pdf: bytes) -> bytes:
    """The same file with one byte of its page content changed (the document a forger edited)."""
    at = pdf.index(b"stream", len(pdf) // 3) + 20
    return pdf[:at] + bytes([pdf[at] ^ 0x01]) + pdf[at + 1:]


async def verifies(gateway: httpx.AsyncClient, pdf: bytes, number: str, code: str, *,
                   private: tuple[str, ...] = ()) -> dict:
    """The public page's answers for a genuine document, a wrong code, the file, the file altered by one byte;
    none of them shows any of ``private`` (a name, a citizen id, an employer's name). Returns the genuine answer."""
    by_code = await gateway.post("/verify/documents", json={"number": number, "verification_code": code.lower()})
    assert by_code.status_code == 200, by_code.text
    answer = by_code.json()
    assert answer["result"] == "genuine", answer
    assert answer["document"]["number"] == number
    assert answer["document"]["sha256"] == hashlib.sha256(pdf).hexdigest()

    wrong = await gateway.post("/verify/documents", json={"number": number, "verification_code": "2222-2222-2222"})
    assert wrong.status_code == 200 and wrong.json()["result"] == "not_found"

    as_file = await gateway.post("/verify/documents/file", files={"file": ("doc.pdf", pdf, "application/pdf")})
    assert as_file.status_code == 200 and as_file.json()["result"] == "genuine", as_file.text
    forged = await gateway.post("/verify/documents/file",
                                files={"file": ("doc.pdf", altered(pdf), "application/pdf")})
    assert forged.status_code == 200, forged.text
    assert forged.json()["result"] == "altered" and forged.json()["document"]["number"] == number

    page = await gateway.post("/verify", data={"number": number, "verification_code": code})
    assert page.status_code == 200 and 'data-result="genuine"' in page.text
    page_file = await gateway.post("/verify", files={"file": ("doc.pdf", altered(pdf), "application/pdf")})
    assert 'data-result="altered"' in page_file.text
    for text in (by_code.text, as_file.text, forged.text, page.text):
        for secret in private:
            assert secret not in text
    return answer


async def fetch_again(gateway: httpx.AsyncClient, service: str, number: str, headers: dict[str, str], *,
                      purpose: str | None = "当事人遗失，补打", form: str = "pdf") -> httpx.Response:
    """``GET /api/<service>/documents/issued/<number>``: an issued document fetched again."""
    params = {"format": form} | ({"purpose": purpose} if purpose is not None else {})
    return await gateway.get(f"/api/{service}/documents/issued/{quote(number, safe='')}", params=params,
                             headers=headers)
