"""``sifund``: the platform's command-line tool."""

from pathlib import Path
from typing import Annotated

import typer

from gateway.identity import service as identity
from gateway.identity.admin import create_demo, identity_session
from services.kernel.db import make_engine
from services.kernel.errors import DomainError
from services.kernel.migrations import autogenerate_revision, upgrade_database
from services.kernel.settings import SERVICES, Settings, get_settings
from services.kernel.supervision import read_state, state_file
from sifund import launcher, logfiles
from sifund import services as catalogue
from sifund import status as platform_status

app = typer.Typer(help="sifund: social insurance fund management and supervision platform", no_args_is_help=True)
db_app = typer.Typer(help="Database schema migrations", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(service: str = typer.Argument(None, help="one service; all when omitted")) -> None:
    """Bring service databases to the newest schema (services also do this at start-up)."""
    settings = get_settings()
    for name in [service] if service else SERVICES:
        engine = make_engine(settings.database_url(name))
        upgrade_database(engine, name, catalogue.spec(name).metadata)
        typer.echo(f"{name}: up to date ({engine.url.render_as_string(hide_password=True)})")


@db_app.command("revision")
def db_revision(
    service: str = typer.Argument(..., help="service whose models changed"),
    message: str = typer.Option(..., "-m", "--message"),
    kernel: bool = typer.Option(False, help="write the revision to the shared kernel branch instead"),
) -> None:
    """Autogenerate a migration from the difference between the models and a scratch database."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/scratch.db")
        autogenerate_revision(engine, service, catalogue.spec(service).metadata,
                              "kernel" if kernel else service, message)


def _settings(data_dir: Path | None, port_base: int | None) -> Settings:
    overrides = {k: v for k, v in {"data_dir": data_dir, "port_base": port_base}.items() if v is not None}
    return Settings(**overrides) if overrides else get_settings()


DataDirOption = Annotated[Path | None, typer.Option(help="instead of SIFUND_DATA_DIR (default: var)")]
PortBaseOption = Annotated[int | None, typer.Option(help="instead of SIFUND_PORT_BASE (default: 8000)")]


@app.command()
def up(
    data_dir: DataDirOption = None,
    port_base: PortBaseOption = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for every component to be healthy")] = 60.0,
    replicas: Annotated[int, typer.Option(help="processes per service (the gateway balances across them); more "
                                               "than one is meant for PostgreSQL databases")] = 1,
    nats_cluster: Annotated[int, typer.Option(
        help="run NATS as a local cluster of this many nodes (3: streams with 3 replicas survive one node's loss)",
        min=1, max=5)] = 1,
) -> None:
    """Start NATS, the four services and the gateway, restarting any that dies (SIFUND_SUPERVISOR_*); Ctrl-C (or
    SIGTERM) stops everything."""
    raise typer.Exit(launcher.up(_settings(data_dir, port_base), timeout=timeout, replicas=replicas,
                                 nats_cluster=nats_cluster))


@app.command()
def status(
    data_dir: DataDirOption = None,
    port_base: PortBaseOption = None,
    url: Annotated[str | None, typer.Option(help="gateway URL (default: from the settings)")] = None,
) -> None:
    """Health of every component, as the gateway sees it. Exit code 0 when all are ok, 1 otherwise."""
    settings = _settings(data_dir, port_base)
    gateway_url = (url or f"http://{settings.host}:{settings.port('gateway')}").rstrip("/")
    try:
        http_status, health = platform_status.fetch_health(gateway_url)
    except platform_status.GatewayUnreachable as exc:
        typer.echo(f"sifund: {exc}", err=True)
        children = read_state(state_file(settings.data_dir))
        if children is not None:  # the launcher runs, the gateway does not answer: show what the launcher knows
            for line in platform_status.render_children(children):
                typer.echo(line)
        raise typer.Exit(1) from exc
    for line in platform_status.render(gateway_url, http_status, health):
        typer.echo(line)
    raise typer.Exit(0 if http_status == 200 and health.get("status") == "ok" else 1)


@app.command()
def logs(
    component: Annotated[str, typer.Argument(help="gateway, a service (accounts, collection, benefits, oversight), "
                                                  "a replica (accounts-2) or nats")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing lines as they are written")] = False,
    lines: Annotated[int, typer.Option("--lines", "-n", help="how many of the last lines to print first")] = 50,
    data_dir: DataDirOption = None,
) -> None:
    """Print a component's log of the embedded topology (<data dir>/logs/<component>.log: one JSON object a line)."""
    path = _settings(data_dir, None).data_dir / "logs" / f"{component}.log"
    if not path.is_file():
        known = sorted(p.stem for p in path.parent.glob("*.log")) if path.parent.is_dir() else []
        typer.echo(f"sifund: no log {path}" + (f"; there are: {', '.join(known)}" if known else ""), err=True)
        raise typer.Exit(1)
    for line in logfiles.last_lines(path, lines):
        typer.echo(line)
    if follow:
        try:
            for line in logfiles.follow(path, stop=lambda: False):
                typer.echo(line)
        except KeyboardInterrupt:
            pass


@app.command()
def backup(
    target: Annotated[Path, typer.Argument(help="an empty (or new) directory for the copy")],
    data_dir: DataDirOption = None,
    port_base: PortBaseOption = None,
) -> None:
    """Copy every database (SQLite backup API / pg_dump) and every JetStream stream with its consumers' positions,
    online, into TARGET with a manifest (versions, schema revisions, audit chain heads, stream sequences, SHA-256)."""
    import asyncio  # noqa: PLC0415

    from sifund import backup as backups  # noqa: PLC0415

    try:
        manifest = asyncio.run(backups.backup(_settings(data_dir, port_base), target))
    except backups.BackupError as exc:
        typer.echo(f"sifund backup: {exc}", err=True)
        raise typer.Exit(1) from exc
    for name, database in manifest["databases"].items():
        head = database["audit_head"]
        typer.echo(f"{name:<11} {database['backend']:<10} audit head {head['seq']} {str(head['hash'])[:16]}")
    for stream, saved in manifest["streams"].items():
        typer.echo(f"{stream:<11} last sequence {saved['last_seq']}, {len(saved['consumers'])} durable consumers")
    typer.echo(f"backup in {target.resolve()} ({len(manifest['sha256'])} files, manifest.json)")


@app.command()
def restore(
    source: Annotated[Path, typer.Argument(help="a directory written by sifund backup")],
    data_dir: DataDirOption = None,
    force: Annotated[bool, typer.Option(help="overwrite a non-empty data directory or databases")] = False,
    nats_url: Annotated[str | None, typer.Option(
        help="restore the streams into this running NATS (a cluster) instead of the embedded store")] = None,
) -> None:
    """Bring a backup back into a stopped platform's data directory (and its PostgreSQL databases, if configured),
    after checking every file against the manifest's SHA-256. Then start it with sifund up."""
    import asyncio  # noqa: PLC0415

    from sifund import backup as backups  # noqa: PLC0415

    try:
        result = asyncio.run(backups.restore(_settings(data_dir, None), source, force=force, nats_url=nats_url))
    except backups.BackupError as exc:
        typer.echo(f"sifund restore: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"restored databases {', '.join(result.databases)}; streams "
               + ", ".join(f"{s} to {seq}" for s, seq in result.streams.items())
               + f"; {result.consumers} durable consumers at their ack floors")


oversight_app = typer.Typer(help="Oversight operations", no_args_is_help=True)
app.add_typer(oversight_app, name="oversight")


@oversight_app.command("rebuild")
def oversight_rebuild(
    data_dir: DataDirOption = None,
    port_base: PortBaseOption = None,
    part: Annotated[list[str] | None, typer.Option(
        help="mirror, ledger, facts and/or receipts (default: all four; facts rebuild the ledger with them)")] = None,
) -> None:
    """Empty oversight's derived tables (mirror, ledger and reconciliation cells, the rules' facts, the internal-control
    report receipts) and replay its streams from the start, in one transaction; cases are not touched. For a STOPPED
    oversight: refused while any oversight replica answers (a running oversight rebuilds through its officer-only job
    endpoint, which pauses its own consumers)."""
    import asyncio  # noqa: PLC0415
    import json  # noqa: PLC0415

    from services.kernel.errors import DomainError  # noqa: PLC0415
    from services.oversight.rebuild import ALL_PARTS, replay_streams  # noqa: PLC0415
    from sifund import backup as backups  # noqa: PLC0415

    settings = _settings(data_dir, port_base)
    parts = tuple(part or ALL_PARTS)
    if unknown := set(parts) - set(ALL_PARTS):
        typer.echo(f"sifund oversight rebuild: unknown part {', '.join(sorted(unknown))}", err=True)
        raise typer.Exit(2)
    if running := backups.service_answers(settings, "oversight"):
        typer.echo(f"sifund oversight rebuild: oversight is running at {', '.join(running)}; stop it, or start the "
                   "rebuild as a job through the gateway (it pauses the live consumers)", err=True)
        raise typer.Exit(1)

    async def run() -> dict:
        engine = make_engine(settings.database_url("oversight"))
        try:
            async with backups.streams_of(settings) as js:
                return (await replay_streams(engine, js, parts=parts)).as_dict()
        finally:
            engine.dispose()

    try:
        result = asyncio.run(run())
    except (backups.BackupError, DomainError) as exc:
        typer.echo(f"sifund oversight rebuild: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(json.dumps(result, ensure_ascii=False))


user_app = typer.Typer(help="Staff users and their roles (recorded as done by cli:<your OS user>)", no_args_is_help=True)
client_app = typer.Typer(help="System clients (tax bureau, partner departments, banks)", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(client_app, name="client")


def _identity(fn):  # noqa: ANN001, ANN202
    """Run an identity change; a refusal prints its code and Chinese message and exits 1."""
    try:
        return fn()
    except DomainError as exc:
        typer.echo(f"{exc.code}: {exc.message}", err=True)
        raise typer.Exit(1) from exc


@user_app.command("create")
def user_create(
    username: str,
    name: Annotated[str, typer.Option(help="display name")],
    unit: Annotated[str, typer.Option(help="所在单位")],
    region: Annotated[str | None, typer.Option(help="行政区划代码 (default: SIFUND_REGION)")] = None,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)] = ...,
    role: Annotated[list[str] | None, typer.Option(help="roles to grant at once")] = None,
    reason: Annotated[str, typer.Option(help="basis for the grants")] = "初始授权",
) -> None:
    """Create a staff user (and optionally grant roles)."""
    from pydantic import TypeAdapter, ValidationError  # noqa: PLC0415

    from services.kernel.identifiers import RegionCode  # noqa: PLC0415

    settings = get_settings()
    try:
        region_code = TypeAdapter(RegionCode).validate_python(region or settings.region)
    except ValidationError as exc:
        typer.echo(f"INVALID_REGION_CODE: {exc.errors()[0]['msg']}", err=True)
        raise typer.Exit(1) from exc
    with identity_session(settings) as session:
        _identity(lambda: identity.create_user(session, settings, username=username, display_name=name, unit=unit,
                                               region=region_code, password=password))
        for r in role or []:
            _identity(lambda r=r: identity.grant_role(session, username=username, role=r, reason=reason))
    typer.echo(f"created {username} ({', '.join(role or []) or 'no roles'})")


@user_app.command("grant")
def user_grant(username: str, role: str, reason: Annotated[str, typer.Option(help="授权依据")]) -> None:
    """Grant a role; an incompatible pair is refused with the rule it breaks."""
    with identity_session(get_settings()) as session:
        _identity(lambda: identity.grant_role(session, username=username, role=role, reason=reason))
    typer.echo(f"granted {role} to {username}")


@user_app.command("revoke")
def user_revoke(username: str, role: str, reason: Annotated[str, typer.Option()]) -> None:
    with identity_session(get_settings()) as session:
        _identity(lambda: identity.revoke_role(session, username=username, role=role, reason=reason))
    typer.echo(f"revoked {role} from {username}")


@user_app.command("disable")
def user_disable(username: str, reason: Annotated[str, typer.Option()]) -> None:
    with identity_session(get_settings()) as session:
        _identity(lambda: identity.set_user_status(session, username=username, status="disabled", reason=reason))
    typer.echo(f"disabled {username}")


@client_app.command("create")
def client_create(
    client_id: str,
    role: Annotated[str, typer.Option(
        help="tax_system | partner_system | bank_system | finance_officer | oversight_officer")],
    name: Annotated[str, typer.Option()],
    region: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Register a system client and print its secret (shown this once)."""
    settings = get_settings()
    with identity_session(settings) as session:
        client, secret = _identity(lambda: identity.create_client(session, client_id=client_id, name=name, role=role,
                                                                  region=region or settings.region))
    typer.echo(f"client_id={client.client_id}\nclient_secret={secret}\n(the secret is not shown again)")


docs_app = typer.Typer(help="Documents generated from the code (docs/)", no_args_is_help=True)
app.add_typer(docs_app, name="docs")


@docs_app.command("events")
def docs_events(
    update_snapshots: Annotated[bool, typer.Option(
        "--update-snapshots", help="also refresh the schema snapshots of compatibly changed or new types")] = False,
) -> None:
    """Render the event catalogue into docs/events.md and check every event type against its committed JSON schema
    snapshot (services/contracts/snapshots). Exit code 1 when a type changed incompatibly (it needs a new version)
    or a snapshot is out of date."""
    from services.contracts import snapshots  # noqa: PLC0415
    from sifund import event_catalogue  # noqa: PLC0415

    typer.echo(f"wrote {event_catalogue.write()}")
    report = snapshots.update() if update_snapshots else snapshots.check()
    if not report.ok:
        typer.echo(report.explain(), err=True)
        raise typer.Exit(1)
    typer.echo(f"{len(snapshots.current_schemas())} event types match their snapshots")


@docs_app.command("trace")
def docs_trace(
    check: Annotated[bool, typer.Option(
        help="write nothing; exit 1 if docs/traceability.md is not current")] = False,
) -> None:
    """Write docs/traceability.md: each seed clause cited in the code → the code citing it → the tests citing it."""
    from sifund import docs_trace as trace

    if check:
        current = trace.is_current()
        typer.echo(f"{trace.OUTPUT}: {'current' if current else 'not current; run sifund docs trace'}")
        raise typer.Exit(0 if current else 1)
    target = trace.write()
    missing = trace.untested(trace.collect())
    typer.echo(f"wrote {target.relative_to(trace.ROOT)}; clauses cited in code with no test: {len(missing)}")


@docs_app.command("screenshots")
def docs_screenshots(
    output: Annotated[Path, typer.Option(help="where the PNGs go")] = Path("docs/screenshots"),
    persons: Annotated[int, typer.Option(help="size of the demo city", min=60)] = 3000,
    seed: Annotated[int, typer.Option(help="the demo city's seed")] = 2026,
    chromium: Annotated[str, typer.Option(envvar="SIFUND_CHROMIUM", help="Chromium binary")] = "/usr/bin/chromium",
) -> None:
    """Start sifund up on a throwaway data directory, run sifund demo and sifund demo city, and write the console's
    main screens (1366×768 PNG) into OUTPUT with Playwright and Debian's Chromium."""
    from sifund import screenshots  # noqa: PLC0415
    from sifund.demo_city import DemoCityError  # noqa: PLC0415

    binary = chromium
    try:
        written = screenshots.take_screenshots(output, persons=persons, seed=seed, chromium=binary,
                                               port_base=screenshots.free_port_base(), say=typer.echo)
    except (screenshots.ScreenshotError, DemoCityError) as exc:
        typer.echo(f"sifund docs screenshots: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"{len(written)} screenshots in {output}")


demo_app = typer.Typer(help="Demo accounts and a demo city", invoke_without_command=True)
app.add_typer(demo_app, name="demo")


@demo_app.callback()
def demo(context: typer.Context) -> None:
    """Create one demo user per staff role and one client per system role; print where their credentials are kept
    (``demo-credentials.txt`` in the data directory, mode 0600), not the credentials. ``sifund demo city`` then
    fills the running platform with a synthetic district."""
    if context.invoked_subcommand is not None:
        return
    settings = get_settings()
    created = create_demo(settings)
    if not created:
        typer.echo("every demo account exists already (see demo-credentials.txt in the data directory)")
    for line in launcher.describe_demo(created, settings) if created else []:
        typer.echo(line)


@demo_app.command("city")
def demo_city(
    gateway: Annotated[str | None, typer.Option(help="the running gateway (default: from the settings, "
                                                     "http://127.0.0.1:8000)")] = None,
    persons: Annotated[int, typer.Option(help="insured persons of the district", min=60, max=200_000)] = 3000,
    seed: Annotated[int, typer.Option(help="the same seed gives the same district")] = 2026,
    credentials: Annotated[Path | None, typer.Option(
        help="the demo accounts file (default: demo-credentials.txt in the data directory)")] = None,
    data_dir: DataDirOption = None,
    port_base: PortBaseOption = None,
) -> None:
    """Fill a RUNNING platform, through its gateway only, with a synthetic district (employers, persons, three
    months of contributions, claims at every level, a payroll with bank failures, a death batch) and planted
    anomalies; print what was planted and where the console shows it. Running it again doubles nothing."""
    import asyncio  # noqa: PLC0415

    from sifund import demo_city as city  # noqa: PLC0415

    settings = _settings(data_dir, port_base)
    options = city.Options(
        gateway=(gateway or f"http://{settings.host}:{settings.port('gateway')}").rstrip("/"),
        data_dir=settings.data_dir, credentials=credentials or settings.data_dir / "demo-credentials.txt",
        persons=persons, seed=seed)
    try:
        report = asyncio.run(city.fill_city(options, say=typer.echo))
    except city.DemoCityError as exc:
        typer.echo(f"sifund demo city: {exc}", err=True)
        raise typer.Exit(1) from exc
    for line in report:
        typer.echo(line)


if __name__ == "__main__":
    app()
