"""Suspicion rules (疑点规则, OVERSIGHT.md): S01–S20, each a named unit with a stable id, a severity, the
seed clause it enforces and a title (``registry.py``), evaluated in the consumer's transaction when the facts arrive
(``handlers.py``) or by the scheduled sweep (``sweep.py``), opening cases through ``cases.service.open_case``.

Modules: ``payments`` (S01, S02, S03 drawing, S04, S05, S07), ``claims`` (S06, S08, S09, S10 rise, S18 levels),
``contributions`` (S10 clamps, S17), ``registry_data`` (S03, S11, S19), ``funds`` (S12–S16 from reconciliation),
``staff`` (S18 roles, S20); fact tables in ``models``; thresholds in ``config``. An event handler records its facts
and evaluates its rules in two steps (``services.oversight.facts.FactHandler``), so that a rebuild from the streams
replays the facts without touching cases.
"""
