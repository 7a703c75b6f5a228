"""Identifier checks with python-stdnum, as pydantic types whose errors carry a stable code and a Chinese message."""

from datetime import date
from functools import lru_cache
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator
from pydantic_core import PydanticCustomError
from stdnum import luhn
from stdnum.cn import ric, uscc
from stdnum.exceptions import InvalidChecksum, InvalidLength, ValidationError


@lru_cache(maxsize=65536)  # a bulk file names one employer on many rows; an invalid code raises (not cached)
def validate_uscc(value: str) -> str:
    """统一社会信用代码: 18 characters with a check character (GB 32100-2015)."""
    try:
        return uscc.validate(value)
    except InvalidChecksum:
        raise PydanticCustomError("INVALID_USCC", "统一社会信用代码校验位错误") from None
    except InvalidLength:
        raise PydanticCustomError("INVALID_USCC", "统一社会信用代码应为18位") from None
    except ValidationError:
        raise PydanticCustomError("INVALID_USCC", "统一社会信用代码格式错误") from None


CITIZEN_ID_CHECKS = {
    "CITIZEN_ID_LENGTH": "公民身份号码应为18位",
    "CITIZEN_ID_FORMAT": "公民身份号码格式错误：前17位应为数字",
    "CITIZEN_ID_BIRTH_DATE": "公民身份号码中的出生日期无效",
    "CITIZEN_ID_CHECK_DIGIT": "公民身份号码校验位错误（第18位应为数字或 X，且与前17位相符）",
}
_EARLIEST_BIRTH = date(1900, 1, 1)


def _refuse_citizen_id(reason: str) -> PydanticCustomError:
    # The code stays INVALID_CITIZEN_ID (clients and batch rejections rely on it); ``reason`` names the check.
    return PydanticCustomError("INVALID_CITIZEN_ID", CITIZEN_ID_CHECKS[reason], {"reason": reason})


def validate_citizen_id(value: str) -> str:
    """公民身份号码 (GB 11643-1999): 18 characters, 17 digits and a digit or X, a real birth date from 1900 on, the
    ISO 7064 MOD 11-2 check digit. The first six digits are the birth place *when the number was issued*: codes are
    retired and new ones created, so they are never looked up in a table (python-stdnum's lacks current codes, e.g.
    150102 呼和浩特市新城区). Each failed check has its own message and ``reason`` (``CITIZEN_ID_CHECKS``)."""
    if len(value) != 18:
        raise _refuse_citizen_id("CITIZEN_ID_LENGTH")
    if not (value[:17].isascii() and value[:17].isdigit()):
        raise _refuse_citizen_id("CITIZEN_ID_FORMAT")
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        raise _refuse_citizen_id("CITIZEN_ID_BIRTH_DATE") from None
    if born < _EARLIEST_BIRTH:
        raise _refuse_citizen_id("CITIZEN_ID_BIRTH_DATE")
    if ric.calc_check_digit(value) != value[17]:
        raise _refuse_citizen_id("CITIZEN_ID_CHECK_DIGIT")
    return value


def validate_bank_card(value: str) -> str:
    """Bank card / account number: 12 to 19 digits; card numbers (16-19 digits) must pass the Luhn check."""
    digits = value.replace(" ", "")
    if not digits.isdigit() or not 12 <= len(digits) <= 19:
        raise PydanticCustomError("INVALID_BANK_CARD", "银行账号应为12至19位数字")
    if len(digits) >= 16 and not luhn.is_valid(digits):
        raise PydanticCustomError("INVALID_BANK_CARD", "银行卡号校验位错误")
    return digits


@lru_cache(maxsize=8192)
def _region_code_exists(value: str) -> bool:
    from stdnum import numdb  # noqa: PLC0415 - the table loads on first use

    info = {k: v for _part, props in numdb.get("cn/loc").info(value) for k, v in props.items()}
    return "province" in info and (value[2:] == "0000" or "county" in info)


def validate_region_code(value: str) -> str:
    """行政区划代码 (GB/T 2260): six digits naming a province, city or county known to python-stdnum's table."""
    if len(value) != 6 or not value.isdigit():
        raise PydanticCustomError("INVALID_REGION_CODE", "行政区划代码应为6位数字")
    if not _region_code_exists(value):
        raise PydanticCustomError("INVALID_REGION_CODE", "行政区划代码不存在")
    return value


def _strip(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


USCC = Annotated[str, BeforeValidator(_strip), AfterValidator(validate_uscc)]
CitizenId = Annotated[str, BeforeValidator(_strip), AfterValidator(validate_citizen_id)]
BankCard = Annotated[str, BeforeValidator(_strip), AfterValidator(validate_bank_card)]
RegionCode = Annotated[str, BeforeValidator(_strip), AfterValidator(validate_region_code)]


def mask_citizen_id(value: str) -> str:
    """``110105********002X``: region and the last four stay readable (DOMAIN.md, Personal data)."""
    return value[:6] + "*" * (len(value) - 10) + value[-4:] if len(value) > 10 else "*" * len(value)


def mask_bank_account(value: str) -> str:
    return "*" * (len(value) - 4) + value[-4:] if len(value) > 4 else "*" * len(value)
