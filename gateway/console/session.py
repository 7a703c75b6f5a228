"""The console's browser session: one httpOnly cookie holding the user's access and refresh tokens and the CSRF
token, encrypted and authenticated (Fernet) with the console key of Settings. Nothing of it is readable by the page's
scripts (no localStorage); a cookie that fails to decrypt (tampered, another key, expired) is an anonymous session."""

import json
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from services.kernel.settings import Settings

COOKIE = "sifund_console"
COOKIE_PATH = "/console"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
# A session's cookie outlives its tokens (the refresh token's hours plus a day): an expired login then still has its
# CSRF token, so the form the user was typing can be posted again after signing in.
EXTRA_COOKIE_SECONDS = 24 * 3600


def console_key(settings: Settings) -> bytes:
    """The Fernet key: the setting, else the data directory's key file, created once. The file appears complete or
    not at all (written aside, then hard-linked into place, which fails if another gateway worker was first), so
    every process of the data directory reads the same key."""
    if settings.console_session_key is not None:
        return settings.console_session_key.get_secret_value().encode()
    path = settings.console_session_key_file
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        aside = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(Fernet.generate_key())
            try:
                os.link(aside, path)
            except FileExistsError:
                pass
        finally:
            aside.unlink()
    return path.read_bytes().strip()


@dataclass
class BrowserSession:
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    access_token: str | None = None
    refresh_token: str | None = None
    access_expires_at: float = 0.0  # epoch seconds
    username: str | None = None
    display_name: str | None = None
    roles: tuple[str, ...] = ()
    changed: bool = False  # written back to the browser with the response

    @property
    def signed_in(self) -> bool:
        return self.access_token is not None

    def sign_in(self, tokens: dict[str, Any], username: str, display_name: str | None = None) -> None:
        self.access_token = tokens["access_token"]
        self.refresh_token = tokens.get("refresh_token")
        self.access_expires_at = time.time() + int(tokens.get("expires_in", 0))
        self.roles = tuple(tokens.get("roles", ()))
        self.username = username
        self.display_name = display_name or self.display_name or username
        self.csrf = secrets.token_urlsafe(32)  # a new login, a new CSRF token (no fixation)
        self.changed = True

    def sign_out(self) -> None:
        self.access_token = self.refresh_token = self.username = self.display_name = None
        self.roles, self.access_expires_at = (), 0.0
        self.csrf = secrets.token_urlsafe(32)
        self.changed = True

    def csrf_matches(self, given: str | None) -> bool:
        return bool(given) and secrets.compare_digest(given.encode(), self.csrf.encode())


class SessionCodec:
    def __init__(self, settings: Settings):
        self.fernet = Fernet(console_key(settings))
        self.max_age = settings.refresh_token_hours * 3600 + EXTRA_COOKIE_SECONDS

    def dumps(self, session: BrowserSession) -> str:
        body = {"csrf": session.csrf, "access": session.access_token, "refresh": session.refresh_token,
                "exp": session.access_expires_at, "user": session.username, "name": session.display_name,
                "roles": list(session.roles)}
        # Without its base64 padding: a cookie value with "=" would be sent quoted.
        return self.fernet.encrypt(json.dumps(body, separators=(",", ":")).encode()).decode().rstrip("=")

    def loads(self, cookie: str | None) -> BrowserSession:
        if not cookie:
            return BrowserSession(changed=True)
        try:
            padded = cookie + "=" * (-len(cookie) % 4)
            body = json.loads(self.fernet.decrypt(padded.encode(), ttl=self.max_age))
            return BrowserSession(csrf=body["csrf"], access_token=body["access"], refresh_token=body["refresh"],
                                  access_expires_at=float(body["exp"]), username=body["user"],
                                  display_name=body.get("name"), roles=tuple(body["roles"]))
        except (InvalidToken, ValueError, KeyError, TypeError):
            return BrowserSession(changed=True)

    def set_cookie(self, response, session: BrowserSession, *, secure: bool) -> None:  # noqa: ANN001
        response.set_cookie(COOKIE, self.dumps(session), max_age=self.max_age, path=COOKIE_PATH, httponly=True,
                            samesite="strict", secure=secure)
