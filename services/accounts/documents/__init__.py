"""Accounts's official documents (issue 19 part 3), numbered, registered and verifiable (services/kernel/documents)."""
