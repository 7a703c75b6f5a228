"""Where an inspection's feedback letter (问题反馈函) is filed in the electronic archive.

001 第十一条 makes the letter one step of one inspection: plan, notice, inspection, oral feedback, the letter with
its rectification deadlines, the report. The units inspected are mostly agencies (同级/下一级经办机构), which are
no insured subject and have no dossier in the business archive (003: one dossier per insured person and per
employer); the article also extends inspections to service institutions (延伸检查服务机构), which are often
registered employers. So:

- the inspected unit is a registered employer — its code is a USCC that oversight's mirror of the registry knows —:
  the letter goes into that employer's dossier, beside its registration and assessments;
- otherwise the letter goes into the inspection's own dossier (subject type ``inspection``, opened by its first
  letter: the target's code as its registration number where it fits, the target's name, the issuing officer's
  area, whose agency staff and internal auditors read it as any dossier of their area).
"""

from sqlalchemy import select
from sqlmodel import Session
from stdnum.cn import uscc
from stdnum.exceptions import ValidationError

from services.kernel import archives, context
from services.kernel.documents.models import IssuedDocument
from services.oversight.inspections.models import Inspection
from services.oversight.models import MirroredEmployer

REGISTRATION_LENGTH = 18  # a dossier's registration number: a citizen id or a USCC


def registered_employer(session: Session, code: str | None) -> MirroredEmployer | None:
    """The registered employer whose USCC is ``code`` (None when the code is no USCC or nobody registered it)."""
    if not code:
        return None
    try:
        code = uscc.validate(code)
    except ValidationError:
        return None
    return session.execute(select(MirroredEmployer).where(MirroredEmployer.uscc == code)).scalars().first()


def letter_dossiers(session: Session, document: IssuedDocument) -> list[archives.DossierRef]:
    inspection = session.get(Inspection, document.subject_id)
    if inspection is None:
        return []
    employer = registered_employer(session, inspection.target_code)
    if employer is not None:
        return [(archives.EMPLOYER, employer.employer_id, (employer.uscc, employer.name, employer.region))]
    code = inspection.target_code if inspection.target_code and len(inspection.target_code) <= REGISTRATION_LENGTH \
        else None
    return [(archives.INSPECTION, inspection.id,
             (code, f"{inspection.target_unit}（现场监督）"[:200], context.current().actor.region))]
