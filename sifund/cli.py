"""``sifund``: the platform's command-line tool."""

import typer

from services.kernel.db import make_engine
from services.kernel.migrations import autogenerate_revision, upgrade_database
from services.kernel.settings import SERVICES, get_settings
from sifund import services as catalogue

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


if __name__ == "__main__":
    app()
