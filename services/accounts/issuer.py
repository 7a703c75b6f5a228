"""The body accounts' documents are signed by when the member of staff issuing one has no unit in their token
(``registry.issuing_unit``): the account statement, the archive's catalogue and notes sheet, the internal-control
yearly report."""

AGENCY = "社会保险经办机构"
