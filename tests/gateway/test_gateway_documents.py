"""The gateway's public verification page for official documents, its refusals and its answer when the issuing
service cannot be asked: never a false "not issued here" (the services' answers for genuine and altered documents
are tested with each document kind, tests/*/test_*_documents.py)."""

from tests.support.documents import platform

PDF_TYPE = "application/pdf"


async def test_the_page_is_public_and_refuses_what_it_cannot_verify(make_settings, nats_server):
    async with platform(make_settings, nats_server.url) as p:
        gw = p.gateway
        page = await gw.get("/verify")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert 'action="/verify"' in page.text and 'type="file"' in page.text and "<script" not in page.text
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]

        nothing = await gw.post("/verify", data={})
        assert nothing.status_code == 400 and "请填写文书编号和验证码" in nothing.text
        unknown = await gw.post("/verify", data={"number": "社保追字〔2026〕1号", "verification_code": "2222-2222-2222"})
        assert unknown.status_code == 200 and 'data-result="not_found"' in unknown.text

        empty = await gw.post("/verify/documents/file", files={"file": ("a.pdf", b"", PDF_TYPE)})
        assert empty.status_code == 400 and empty.json()["error"]["code"] == "EMPTY_DOCUMENT"
        big = await gw.post("/verify/documents/file", files={"file": ("a.pdf", b"%PDF" + b"0" * 10 * 1024 * 1024,
                                                                       PDF_TYPE)})
        assert big.status_code == 413 and big.json()["error"]["code"] == "DOCUMENT_TOO_LARGE"
        stranger = await gw.post("/verify/documents/file", files={"file": ("a.pdf", b"%PDF-1.4 not ours", PDF_TYPE)})
        assert stranger.status_code == 200 and stranger.json()["result"] == "not_found"
        assert len(stranger.json()["presented_sha256"]) == 64
        blank = await gw.post("/verify/documents", json={"number": "", "verification_code": "x"})
        assert blank.status_code == 422


async def test_an_unreachable_service_makes_verification_unavailable_not_negative(make_settings, nats_server):
    async with platform(make_settings, nats_server.url, down=("collection",)) as p:
        gw = p.gateway
        by_code = await gw.post("/verify/documents", json={"number": "社保催字〔2026〕1号",
                                                           "verification_code": "2222-2222-2222"})
        assert by_code.status_code == 503 and by_code.json()["error"]["code"] == "DEPENDENCY_UNAVAILABLE"
        assert "collection" in by_code.json()["error"]["message"]
        by_file = await gw.post("/verify/documents/file", files={"file": ("a.pdf", b"%PDF-1.4", PDF_TYPE)})
        assert by_file.status_code == 503
        page = await gw.post("/verify", data={"number": "社保催字〔2026〕1号", "verification_code": "2222"})
        assert page.status_code == 503 and "暂时无法完成文书核验" in page.text and "data-result" not in page.text
