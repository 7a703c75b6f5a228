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
        # The package's tests sign in some forty times a minute, all from 127.0.0.1: above the gateway's per-address
        # limit of token requests (20 a minute), which would answer 429 depending on how fast the machine is.
        settings = partial(platform_settings, directory, rate_limit_token_per_ip_per_minute=600)
        async with console_platform(settings, nats.url) as running:
            yield running
    finally:
        nats.stop()
