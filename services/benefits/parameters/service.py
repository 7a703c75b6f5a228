"""Benefit parameters: dated documents per region, proposed by the agency's finance (``accountant``) and
approved or rejected by another person (``agency_approver``), the same mechanics as collection's rates and bases
(``services/kernel/dated_documents.py``).

Every change writes its row and an audit-chain entry in one transaction; the proposal's and the decision's reasons
live in the audit entries (the ``benefit_parameters`` table has no column for them). A document applies from
``valid_from`` until the next approved one of the same region; ``parameters_for`` answers the one in force for a
month, walking up district → city → province, so a claim is computed with the figures of its effective month and
records the parameters' id.
"""

from services.benefits.models import BenefitParameters
from services.benefits.parameters.schemas import BenefitParametersDocument
from services.kernel.dated_documents import DatedDocuments, InForce, Wording

ENTITY = "benefit_parameters"

BENEFIT_PARAMETERS: DatedDocuments[BenefitParameters, BenefitParametersDocument] = DatedDocuments(
    BenefitParameters, BenefitParametersDocument, entity=ENTITY, action="benefit_parameters",
    wording=Wording(subject="待遇计发参数", document="待遇计发参数", item="参数", four_eyes="参数"),
)

Parameters = InForce[BenefitParametersDocument]
"""The approved document in force: its row id (recorded in a claim's computation) and the parsed document."""

parameters_for = BENEFIT_PARAMETERS.in_force  # (session, region, period) → Parameters; 422 NO_PARAMETERS
