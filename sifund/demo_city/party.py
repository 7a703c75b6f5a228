"""Who fills the demo city: the demo users and system clients of ``sifund demo``, signed in through the gateway's
OAuth2 grants, calling its routes over HTTP like any front-end — no back door."""

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import httpx

# Answers that say nothing about whether the request was applied (a process restarting, a busy limit): ask again.
NO_ANSWER = {429, 502, 503, 504}
PATIENCE_SECONDS = 120.0


class DemoCityError(Exception):
    """The city could not be filled: the message says which call and what the platform answered."""


def read_credentials(path: Path) -> dict[str, str]:
    """Secrets by user name or client id from a credentials file (``kind name secret role`` rows)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DemoCityError(f"no demo credentials at {path} ({exc.strerror}): run `sifund demo` (or `sifund up` on an "
                            "empty data directory) first, or name the file with --credentials") from exc
    found = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] in ("user", "client"):
            found[parts[1]] = parts[2]
    return found


def error_code(response: httpx.Response) -> str | None:
    """The stable code of an error answer (``{"error": {"code": …}}``), or None for anything else."""
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error.get("code") if isinstance(error, dict) else None


class Party:
    """One signed-in caller. ``call`` asks again after an answer that says nothing (same Idempotency-Key or business
    key), renews the token on 401, and accepts a refusal whose code says "already there" (``already``)."""

    def __init__(self, client: httpx.AsyncClient, name: str, secret: str, *, system: bool = False):
        self.client, self.name, self._secret, self.system = client, name, secret, system
        self._token: str | None = None
        self._lock = asyncio.Lock()

    async def sign_in(self) -> "Party":
        grant = ({"grant_type": "client_credentials", "client_id": self.name, "client_secret": self._secret}
                 if self.system else {"username": self.name, "password": self._secret})
        response = await self._send("POST", "/auth/token", data=grant)
        if response.status_code != 200:
            raise DemoCityError(f"{self.name} cannot sign in: {response.status_code} {response.text[:300]}")
        self._token = response.json()["access_token"]
        return self

    async def call(self, method: str, path: str, *, expect: Iterable[int] = (200, 201), already: Iterable[str] = (),
                   key: str | None = None, api: bool = True, **kwargs) -> httpx.Response:
        url = f"/api{path}" if api else path
        extra_headers = kwargs.pop("headers", {})
        for renewed in (False, True):
            headers = {**extra_headers, "Authorization": f"Bearer {self._token}",
                       **({"Idempotency-Key": key} if key else {})}
            response = await self._send(method, url, headers=headers, **kwargs)
            if response.status_code != 401 or renewed:
                break
            async with self._lock:
                await self.sign_in()
        if response.status_code in set(expect) or error_code(response) in set(already):
            return response
        raise DemoCityError(f"{self.name}: {method} {url} answered {response.status_code} {response.text[:400]}")

    async def json(self, method: str, path: str, **kwargs) -> Any:  # noqa: ANN401 - the API's JSON
        return (await self.call(method, path, **kwargs)).json()

    async def _send(self, method: str, url: str, **kwargs) -> httpx.Response:
        loop = asyncio.get_running_loop()
        deadline, pause = loop.time() + PATIENCE_SECONDS, 0.2
        while True:
            try:
                response = await self.client.request(method, url, **kwargs)
                if response.status_code not in NO_ANSWER:
                    return response
                silence = f"{response.status_code}"
            except httpx.TransportError as exc:
                silence = type(exc).__name__
            if loop.time() > deadline:
                raise DemoCityError(f"{self.name}: {method} {url} unanswered for {PATIENCE_SECONDS:g}s ({silence})")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 3.0)


async def in_parallel(items: Iterable, work: Callable[..., Awaitable], limit: int = 6) -> list:
    """``work(item)`` for each item, at most ``limit`` at a time, results in order."""
    gate = asyncio.Semaphore(limit)

    async def one(item):  # noqa: ANN001, ANN202
        async with gate:
            return await work(item)

    return list(await asyncio.gather(*(one(item) for item in items)))


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 180.0, pause: float = 0.5) -> None:
    """Wait until ``check()`` holds (a fact other services learn from the streams), or fail saying ``what``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise DemoCityError(f"not {what} within {timeout:g}s")
        await asyncio.sleep(pause)
