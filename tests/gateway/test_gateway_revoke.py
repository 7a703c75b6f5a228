"""``POST /auth/revoke`` (sign-out, RFC 7009): the refresh token can no longer be used, the user's other sessions
stay (until the revoked token is presented again, which the gateway treats as any reused token); a token that is unknown, already revoked, an access token or garbage is answered 200 and changes nothing;
the sign-out is in the gateway's audit chain."""

from gateway.identity.admin import create_demo


async def test_revoke_ends_one_refresh_token_only(make_settings, nats_server, start_gateway):
    settings = make_settings(nats_server.url)
    passwords = {c["username"]: c["password"] for c in create_demo(settings)}
    async with start_gateway(settings) as gateway:
        async def sign_in(username: str = "demo_it_admin") -> dict:
            response = await gateway.post("/auth/token", data={"username": username,
                                                               "password": passwords[username]})
            assert response.status_code == 200, response.text
            return response.json()

        first, second = await sign_in(), await sign_in()
        revoked = await gateway.post("/auth/revoke", data={"token": first["refresh_token"]})
        assert revoked.status_code == 200 and revoked.json() == {"revoked": True}
        # The user's other session is not signed out by it.
        other = await gateway.post("/auth/token", data={"grant_type": "refresh_token",
                                                        "refresh_token": second["refresh_token"]})
        assert other.status_code == 200, other.text
        # The signed-out token is refused (and, presented again, taken for a stolen one as any used token is).
        refused = await gateway.post("/auth/token", data={"grant_type": "refresh_token",
                                                          "refresh_token": first["refresh_token"]})
        assert refused.status_code == 401

        for token in (first["refresh_token"], first["access_token"], "not-a-token"):
            again = await gateway.post("/auth/revoke", data={"token": token})
            assert again.status_code == 200
        assert (await gateway.post("/auth/revoke", data={})).status_code == 422

        auditor = await sign_in("demo_internal_auditor")
        entries = await gateway.get("/audit/entries", params={"limit": 1000, "entity_id": "demo_it_admin"},
                                    headers={"Authorization": f"Bearer {auditor['access_token']}"})
        assert entries.status_code == 200, entries.text
        assert [e["action"] for e in entries.json()].count("auth.sign_out") == 1
