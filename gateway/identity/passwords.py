"""Password and client-secret hashing (argon2id) and the password policy."""

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from services.kernel.errors import Invalid

_hasher = PasswordHasher()
# Verifying against this when the user does not exist keeps the response time the same (no username probing).
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_secret(secret: str) -> str:
    return _hasher.hash(secret)


def verify_secret(secret_hash: str | None, secret: str) -> bool:
    try:
        return _hasher.verify(secret_hash or _DUMMY_HASH, secret) and secret_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def check_password_policy(password: str, *, username: str, min_length: int) -> None:
    classes = sum(
        (
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        )
    )
    if len(password) < min_length:
        raise Invalid("PASSWORD_TOO_WEAK", f"密码长度至少{min_length}位")
    if classes < 3:
        raise Invalid("PASSWORD_TOO_WEAK", "密码须包含大写字母、小写字母、数字、符号中的至少三类")
    if username.lower() in password.lower():
        raise Invalid("PASSWORD_TOO_WEAK", "密码不得包含用户名")


def generate_password() -> str:
    """A random password that satisfies the policy (demo users, resets)."""
    while True:
        candidate = secrets.token_urlsafe(14) + "-7a"
        if any(c.isupper() for c in candidate) and any(c.isdigit() for c in candidate):
            return candidate


def generate_client_secret() -> str:
    return secrets.token_urlsafe(32)
