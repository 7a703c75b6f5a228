"""Oversight's independent ledger: aggregates per reconciliation cell, fed only by events (OVERSIGHT.md)."""
