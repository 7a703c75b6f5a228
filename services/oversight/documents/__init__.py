"""Oversight's official documents — the inspection feedback letter, the budget tables and execution report, the
half-year major-incident summary: numbered, registered, verifiable (services/kernel/documents)."""
