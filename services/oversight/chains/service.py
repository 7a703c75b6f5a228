"""Audit-chain verification (OVERSIGHT.md, Audit-chain verification; ARCHITECTURE.md principle 5).

Every component keeps its audit log as a hash chain and exposes ``GET /audit/verify`` (recompute it), ``/audit/head``
(seq and hash of the last entry) and ``/audit/entries`` to internal auditors and oversight officers. Oversight pulls
them for accounts, collection, benefits and the gateway and keeps, per component, the last head it verified
(``chain_checkpoint``). A check finds:

- **broken** — ``/audit/verify`` is not ok (an entry edited, deleted or reordered; the head not matching);
- **rewound** — the chain verifies but no longer contains what oversight saw: its head seq is below the last
  verified seq, or the entry at the last verified seq now has a different hash (the tail was cut off and the head
  row put back, or the whole chain was recomputed after an edit).

Either opens a **severe** case through ``open_case`` with ``rule_id = "CHAIN"``, ``subject = audit_chain:<component>``
and a fact key naming the finding (``accounts:broken:<first bad seq>``, ``accounts:rewound:<seq>:<hash>``), so a
check repeated on the same damage counts an occurrence instead of opening another case. The checkpoint only moves
forward on a clean check; after a finding it stays until an officer re-baselines it (with a reason, audited) once
the case is handled. A component that cannot be reached is recorded as ``unreachable`` (no case: that is an
availability matter, visible in ``GET /chains``).

**Credential.** The services only answer ``/audit/*`` to ``internal_auditor`` / ``oversight_officer`` tokens. Oversight
mints its own short-lived client token (``system:oversight``, role ``oversight_officer``) when it can sign one, i.e.
when ``SIFUND_JWT_PRIVATE_KEY`` (or the key file under the data directory, as in development) is available to the
oversight process. In production the private key stays with the gateway: oversight then forwards the calling
officer's (or scheduler's) own bearer token, which works because the caller of ``POST /chains/verify`` is itself an
oversight officer or an oversight client credential. Each check records which credential was used.

**Schedule.** Oversight's scheduler (``services/oversight/scheduler``) calls ``verify_components`` every 15 minutes
by default with ``trigger="schedule"``, its own gateway client token as the caller's and its client id as
``checked_by``. An external scheduler may still call ``POST /chains/verify {"trigger": "schedule"}`` with an
oversight client credential.
"""

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import Engine, select
from sqlmodel import Session

from services.kernel import clock
from services.kernel.audit import GENESIS, append_audit
from services.kernel.auth import TokenClaims, issue_token
from services.kernel.db import unit_of_work
from services.kernel.settings import Settings
from services.oversight.cases.service import open_case
from services.oversight.chains.models import ChainCheck, ChainCheckpoint

COMPONENTS = ("accounts", "collection", "benefits", "gateway")
RULE_ID = "CHAIN"
SEED_CLAUSE = "004 第24项"  # every change traceable; the hash chain is how (ARCHITECTURE.md principle 5)
CASE_DEADLINE_DAYS = 7


def component_url(settings: Settings, component: str) -> str:
    if component == "gateway":  # the gateway listens on the port base itself
        url = settings.gateway_url or f"http://{settings.host}:{settings.port('gateway')}"
        return url.rstrip("/")
    return settings.service_url(component)


def service_token(settings: Settings) -> str | None:
    """A 5-minute ``system:oversight`` client token, if this process holds the signing key; else None."""
    if not (settings.jwt_private_key or settings.private_key_file.exists()):
        return None
    token, _ = issue_token(settings, TokenClaims(
        subject="system:oversight", kind="client", roles=("oversight_officer",), name="基金监督审计链核验",
        unit="基金监督", region=settings.region), lifetime=timedelta(minutes=5))
    return token


@dataclass
class Observation:
    """What one component answered."""

    component: str
    reachable: bool = True
    error: str | None = None
    verify: dict[str, Any] | None = None
    head: dict[str, Any] | None = None
    baseline: tuple[int, str] | None = None
    entry_at_baseline: dict[str, Any] | None = None  # the entry at the baseline seq as it is now (None: gone)


@dataclass
class Finding:
    kind: str  # broken | rewound
    fact_key: str
    problem: str
    details: dict[str, Any] = field(default_factory=dict)


async def observe(http: httpx.AsyncClient, settings: Settings, component: str, token: str,
                  baseline: tuple[int, str] | None) -> Observation:
    obs = Observation(component=component, baseline=baseline)
    base = component_url(settings, component)
    headers = {"Authorization": f"Bearer {token}"}
    try:
        # Recomputing a whole chain may legitimately take longer than an internal call's timeout: up to the
        # gateway's own limit for a request.
        verify = await http.get(f"{base}/audit/verify", headers=headers, timeout=settings.gateway_read_timeout_seconds)
        head = await http.get(f"{base}/audit/head", headers=headers)
        for response in (verify, head):
            if response.status_code != 200:
                obs.error = f"{response.request.url.path} answered {response.status_code}: {response.text[:300]}"
                return obs
        obs.verify, obs.head = verify.json(), head.json()
        if baseline and baseline[0] > 0:
            entries = await http.get(f"{base}/audit/entries", headers=headers,
                                     params={"after_seq": baseline[0] - 1, "limit": 1})
            if entries.status_code != 200:
                obs.error = f"/audit/entries answered {entries.status_code}: {entries.text[:300]}"
                return obs
            rows = entries.json()
            obs.entry_at_baseline = rows[0] if rows and rows[0].get("seq") == baseline[0] else None
    except httpx.HTTPError as exc:
        obs.reachable, obs.error = False, f"{type(exc).__name__}: {exc}"
    except ValueError as exc:  # not JSON
        obs.error = f"unreadable answer: {exc}"
    return obs


def judge(obs: Observation) -> list[Finding]:
    """Broken and/or rewound, against the checkpoint the observation was made with."""
    findings: list[Finding] = []
    verify, head = obs.verify or {}, obs.head or {}
    if not verify.get("ok", False):
        bad = verify.get("first_bad_seq")
        findings.append(Finding("broken", f"{obs.component}:broken:{bad}",
                                f"审计链校验失败：第 {bad} 条 — {verify.get('problem')}",
                                {"first_bad_seq": bad, "problem": verify.get("problem"),
                                 "length": verify.get("length")}))
    if obs.baseline and obs.baseline[0] > 0:
        seq, expected = obs.baseline
        now_seq = int(head.get("seq", 0))
        problem = None
        if now_seq < seq:
            problem = f"审计链被回退：当前链头序号 {head.get('seq')} 低于上次核验的 {seq}"
        elif obs.entry_at_baseline is None:
            problem = f"审计链被改写：上次核验的第 {seq} 条已不存在"
        elif obs.entry_at_baseline.get("hash") != expected:
            problem = f"审计链被改写：第 {seq} 条的哈希与上次核验不同"
        if problem:
            findings.append(Finding("rewound", f"{obs.component}:rewound:{seq}:{expected}", problem, {
                "last_verified_seq": seq, "last_verified_hash": expected, "head_seq": head.get("seq"),
                "head_hash": head.get("hash"),
                "hash_now": obs.entry_at_baseline.get("hash") if obs.entry_at_baseline else None}))
    return findings


def baselines(engine: Engine, components: list[str]) -> dict[str, tuple[int, str] | None]:
    with Session(engine) as session:
        rows = {r.component: r for r in session.execute(
            select(ChainCheckpoint).where(ChainCheckpoint.component.in_(components))).scalars()}
    return {c: (rows[c].seq, rows[c].hash) if c in rows else None for c in components}


def record(engine: Engine, settings: Settings, observations: list[Observation], *, trigger: str, credential: str,
           checked_by: str) -> list[ChainCheck]:
    """One transaction: a check row per component, cases for findings, checkpoints moved on clean checks."""
    now = clock.utc_now()
    checks = []
    with unit_of_work(engine) as session:
        for obs in observations:
            checkpoint = session.execute(select(ChainCheckpoint).where(
                ChainCheckpoint.component == obs.component).with_for_update()).scalar_one_or_none()
            if checkpoint is None:
                checkpoint = ChainCheckpoint(component=obs.component, seq=0, hash=GENESIS)
                session.add(checkpoint)
            check = ChainCheck(component=obs.component, checked_at=now, trigger=trigger, credential=credential,
                               checked_by=checked_by, status="ok",
                               baseline_seq=obs.baseline[0] if obs.baseline else None,
                               baseline_hash=obs.baseline[1] if obs.baseline else None)
            if obs.error:
                check.status = "unreachable" if not obs.reachable else "error"
                check.problem = obs.error
            else:
                verify, head = obs.verify or {}, obs.head or {}
                check.length, check.first_bad_seq = verify.get("length"), verify.get("first_bad_seq")
                check.head_seq, check.head_hash = head.get("seq"), head.get("hash")
                findings = judge(obs)
                case_ids = []
                for finding in findings:
                    opening = open_case(
                        session, rule_id=RULE_ID, severity="severe", subject_type="audit_chain",
                        subject_id=obs.component, fact_key=finding.fact_key,
                        title=f"{obs.component} 审计链{'损坏' if finding.kind == 'broken' else '被回退或改写'}",
                        details={"component": obs.component, "finding": finding.kind, "problem": finding.problem,
                                 **finding.details},
                        seed_clause=SEED_CLAUSE, unit=settings.oversight_cases.chain_unit, region=settings.region,
                        deadline_days=CASE_DEADLINE_DAYS)
                    case_ids.append(opening.case.id)
                if findings:
                    check.status = findings[0].kind if len(findings) == 1 else "broken+rewound"
                    check.problem = "；".join(f.problem for f in findings)
                    check.case_id = case_ids[0]
                    checkpoint.last_case_id = case_ids[-1]
                elif int(verify.get("length", 0)) >= checkpoint.seq:
                    checkpoint.seq, checkpoint.hash = int(verify["length"]), verify["head_hash"]
                    checkpoint.verified_at = now
            checkpoint.last_checked_at, checkpoint.last_status, checkpoint.last_problem = now, check.status, \
                check.problem
            checkpoint.checks += 1
            session.add(checkpoint)
            session.add(check)
            checks.append(check)
        session.flush()
    return checks


async def verify_components(http: httpx.AsyncClient, engine: Engine, settings: Settings, components: list[str], *,
                            caller_token: str | None, trigger: str, checked_by: str) -> list[ChainCheck]:
    import anyio  # noqa: PLC0415

    token = service_token(settings)
    credential = "service"
    if token is None:
        token, credential = caller_token, "caller"
    known = await anyio.to_thread.run_sync(baselines, engine, components)
    observations = await asyncio.gather(*(observe(http, settings, c, token or "", known[c]) for c in components))
    return await anyio.to_thread.run_sync(
        lambda: record(engine, settings, list(observations), trigger=trigger, credential=credential,
                       checked_by=checked_by))


def rebaseline(engine: Engine, obs: Observation, *, reason: str, checked_by: str, credential: str) -> ChainCheck:
    """Accept the component's current chain as the new checkpoint (after a CHAIN case was handled, e.g. restored
    from backup). Only a chain that verifies now; audited with the reason."""
    from services.kernel.errors import Conflict  # noqa: PLC0415

    if obs.error:
        raise Conflict("CHAIN_UNREACHABLE", f"无法读取 {obs.component} 的审计链：{obs.error}")
    verify = obs.verify or {}
    if not verify.get("ok"):
        raise Conflict("CHAIN_BROKEN", f"{obs.component} 的审计链当前校验不通过，不能作为新的核验基准",
                       details=verify)
    now = clock.utc_now()
    with unit_of_work(engine) as session:
        checkpoint = session.execute(select(ChainCheckpoint).where(
            ChainCheckpoint.component == obs.component).with_for_update()).scalar_one_or_none()
        if checkpoint is None:
            checkpoint = ChainCheckpoint(component=obs.component, seq=0, hash=GENESIS)
        before = (checkpoint.seq, checkpoint.hash)
        checkpoint.seq, checkpoint.hash = int(verify["length"]), verify["head_hash"]
        checkpoint.verified_at = checkpoint.last_checked_at = now
        checkpoint.last_status, checkpoint.last_problem = "rebaselined", reason
        checkpoint.checks += 1
        check = ChainCheck(component=obs.component, checked_at=now, trigger="rebaseline", credential=credential,
                           checked_by=checked_by, status="rebaselined", length=checkpoint.seq,
                           head_seq=(obs.head or {}).get("seq"), head_hash=(obs.head or {}).get("hash"),
                           baseline_seq=before[0], baseline_hash=before[1], problem=reason)
        session.add(checkpoint)
        session.add(check)
        append_audit(session, action="chain.rebaseline", entity_type="chain_checkpoint", entity_id=obs.component,
                     detail={"from": {"seq": before[0], "hash": before[1]},
                             "to": {"seq": checkpoint.seq, "hash": checkpoint.hash}}, reason=reason)
        session.flush()
    return check
