"""Reading benefits' registry mirror: persons, their payment accounts, the contribution index. Used by the registry
endpoints and by the other benefits packages (claims, payroll, eligibility, recovery)."""

from sqlalchemy import select
from sqlmodel import Session

from services.benefits.models import BeneficiaryAccount, BeneficiaryPerson
from services.kernel import context
from services.kernel.auth import ensure_in_region
from services.kernel.errors import NotFound

STAFF_REGIONLESS_ROLES = frozenset({"partner_system", "bank_system", "tax_system"})


def check_region(region: str) -> None:
    """Staff act only on persons of their own area; a partner system's client is not bound to one district."""
    actor = context.current().actor
    if actor.role in STAFF_REGIONLESS_ROLES or actor.role == "system":
        return
    ensure_in_region(actor, region)


def get_person(session: Session, person_id: str, *, region_check: bool = True,
               for_update: bool = False) -> BeneficiaryPerson:
    query = select(BeneficiaryPerson).where(BeneficiaryPerson.person_id == person_id)
    person = session.execute(query.with_for_update() if for_update else query).scalar_one_or_none()
    if person is None:
        raise NotFound("PERSON_NOT_FOUND", "人员不存在（待遇系统尚未收到该人员的登记信息）")
    if region_check:
        check_region(person.region)
    return person


def person_by_citizen_id(session: Session, citizen_id: str) -> BeneficiaryPerson | None:
    return session.execute(
        select(BeneficiaryPerson).where(BeneficiaryPerson.citizen_id == citizen_id)).scalar_one_or_none()


def accounts_of(session: Session, person_id: str) -> list[BeneficiaryAccount]:
    return list(session.execute(select(BeneficiaryAccount).where(BeneficiaryAccount.person_id == person_id)
                                .order_by(BeneficiaryAccount.bank_account_id)).scalars())


def payable_account(session: Session, person: BeneficiaryPerson, bank_account_id: str) -> BeneficiaryAccount | None:
    """The account if benefits may pay into it: the person's own, active, in the person's own name (000 二(三))."""
    account = session.get(BeneficiaryAccount, bank_account_id)
    if account is None or account.person_id != person.person_id or account.status != "active":
        return None
    if account.holder_name != person.name:
        return None
    return account
