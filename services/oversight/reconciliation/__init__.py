"""Three-way reconciliation R1–R6 computed from the ledger's cells, month close (月结) and reports (OVERSIGHT.md)."""
