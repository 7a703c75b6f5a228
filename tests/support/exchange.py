"""The data exchange: valid citizen ids and USCCs, partner headers and uploads."""

from datetime import date, timedelta

from stdnum.cn import ric
from stdnum.cn import uscc as uscc_mod

from services.kernel.auth import TokenClaims, issue_token

PARTNER = "partner.mzj"  # 民政局 (a client of the gateway)


def citizen_id(serial: int, *, born: date = date(1960, 3, 1), area: str = "150121") -> str:
    """A valid 公民身份号码 (born in 土默特左旗, a code without a validity range); ``serial`` up to 999 999 (the
    birth date moves on every 1 000)."""
    born = born + timedelta(days=serial // 1000)
    body = f"{area}{born:%Y%m%d}{serial % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")


def make_uscc(serial: int) -> str:
    body = f"91150102{serial:09d}"
    return body + uscc_mod.calc_check_digit(body)


def partner_headers(settings, subject: str = PARTNER) -> dict[str, str]:  # noqa: ANN001
    """A partner system authenticates as a client (client-credentials grant at the gateway)."""
    token, _ = issue_token(settings, TokenClaims(subject=subject, kind="client", roles=("partner_system",),
                                                 name="民政局数据交换", unit="民政局"))
    return {"Authorization": f"Bearer {token}"}


async def upload(client, headers, kind: str, records: list[dict], batch_key: str = "B-001"):  # noqa: ANN001, ANN201
    return await client.post("/exchange/batches", json={"batch_key": batch_key, "kind": kind, "records": records},
                             headers=headers)
