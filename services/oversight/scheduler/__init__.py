"""Oversight's scheduler: runs the periodic work (audit-chain verification, case escalation, the suspicion-rule
sweep) inside the oversight process, logs every run in ``scheduled_job_run``, and calls other services as its own
system client (see ``service.py``)."""
