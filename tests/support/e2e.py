"""Helpers of the end-to-end flows: waiting for an eventual condition, valid identifiers, partner headers."""

import asyncio

from stdnum.cn import ric
from stdnum.cn import uscc as uscc_mod

from services.kernel.auth import TokenClaims, issue_token


def bank_headers(settings, subject: str = "bank.icbc") -> dict[str, str]:  # noqa: ANN001
    """The bank's system authenticates as a client (client-credentials grant at the gateway)."""
    token, _ = issue_token(settings, TokenClaims(subject=subject, kind="client", roles=("bank_system",),
                                                 name="工商银行代发系统", unit="中国工商银行"))
    return {"Authorization": f"Bearer {token}"}


DISTRICT = "150102"


def citizen_id(birth: str, serial: int) -> str:
    body = f"{DISTRICT}{birth}{serial:03d}"
    return body + ric.calc_check_digit(body + "0")  # the function wants a full-length number


def uscc(serial: int) -> str:
    body = f"91150102{serial:09d}"
    return body + uscc_mod.calc_check_digit(body)


async def eventually(fetch, check, timeout: float = 15.0):  # noqa: ANN001
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await fetch()
        if check(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not reached: {value}")
        await asyncio.sleep(0.1)


VALID_USCC = "91110000600037341L"


REGION = "150102"  # 呼和浩特市新城区


def employer(uscc: str = VALID_USCC, name: str = "呼和浩特市某某有限公司", region: str = REGION) -> dict:
    return {"uscc": uscc, "name": name, "region": region}


async def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05):  # noqa: ANN001
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await predicate()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)
