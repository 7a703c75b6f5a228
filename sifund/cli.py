"""``sifund``: the platform's command-line tool."""

from pathlib import Path
from typing import Annotated

import typer

from services.kernel.db import make_engine
from services.kernel.migrations import autogenerate_revision, upgrade_database
from services.kernel.settings import SERVICES, Settings, get_settings
from sifund import launcher
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
) -> None:
    """Start NATS, the four services and the gateway; Ctrl-C (or SIGTERM) stops everything."""
    raise typer.Exit(launcher.up(_settings(data_dir, port_base), timeout=timeout))


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
        raise typer.Exit(1) from exc
    for line in platform_status.render(gateway_url, http_status, health):
        typer.echo(line)
    raise typer.Exit(0 if http_status == 200 and health.get("status") == "ok" else 1)


if __name__ == "__main__":
    app()
