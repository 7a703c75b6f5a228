"""A trailing slash (or an id ending in an encoded ``/``) is a path no route declares: 404 with the error body, not a
307 redirect to the service's own internal address, which no OpenAPI document declares and which, behind the
gateway, points the client at a host it cannot reach."""


async def test_a_trailing_slash_is_not_found_not_a_redirect(start_service, auth):
    clerk = auth("agency_clerk")
    async with start_service("collection") as client:
        for path in ("/registry/employers/abc%2F", "/registry/employers/abc/", "/employers/"):
            r = await client.get(path, headers=clerk)
            assert r.status_code in (404, 405), f"{path}: {r.status_code} {r.headers.get('location')}"
            assert "location" not in r.headers
            assert r.json()["error"]["code"] in ("NOT_FOUND", "METHOD_NOT_ALLOWED")
