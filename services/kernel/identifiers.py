"""Identifier checks with python-stdnum, as pydantic types whose errors carry a stable code and a Chinese message."""

from functools import lru_cache
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator
from pydantic_core import PydanticCustomError
from stdnum import luhn
from stdnum.cn import ric, uscc
from stdnum.exceptions import InvalidChecksum, InvalidComponent, InvalidFormat, InvalidLength, ValidationError


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


def validate_citizen_id(value: str) -> str:
    """公民身份号码: 18 characters, valid birth date and region prefix, ISO 7064 check digit."""
    try:
        return ric.validate(value)
    except InvalidChecksum:
        raise PydanticCustomError("INVALID_CITIZEN_ID", "公民身份号码校验位错误") from None
    except InvalidLength:
        raise PydanticCustomError("INVALID_CITIZEN_ID", "公民身份号码应为18位") from None
    except InvalidComponent:
        raise PydanticCustomError("INVALID_CITIZEN_ID", "公民身份号码中的出生日期无效") from None
    except (InvalidFormat, ValidationError):
        raise PydanticCustomError("INVALID_CITIZEN_ID", "公民身份号码格式错误") from None


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
