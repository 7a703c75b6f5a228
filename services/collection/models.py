"""Tables of the collection service. They live in the collection database only."""

from sqlalchemy.orm import registry
from sqlmodel import SQLModel


class CollectionTable(SQLModel, registry=registry()):
    pass


metadata = CollectionTable.metadata
