"""Tables of the benefits service. They live in the benefits database only."""

from sqlalchemy.orm import registry
from sqlmodel import SQLModel


class BenefitsTable(SQLModel, registry=registry()):
    pass


metadata = BenefitsTable.metadata
