"""One platform for the console's platform tests (starting four services and the gateway costs tens of seconds):
the package's modules share it."""

from functools import partial

import pytest

from sifund.natsd import NatsServer
from tests.support.console import console_platform, platform_settings


@pytest.fixture(scope="package")
async def platform(tmp_path_factory):
    directory = tmp_path_factory.mktemp("console")
    nats = NatsServer(directory / "nats").start()
    try:
        async with console_platform(partial(platform_settings, directory), nats.url) as running:
            yield running
    finally:
        nats.stop()
