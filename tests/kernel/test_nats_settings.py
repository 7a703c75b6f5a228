"""NATS settings: several seed servers (a cluster) and the replica count of streams and consumers."""

import pytest
from pydantic import ValidationError

from services.kernel.bus import Bus, stream_config
from services.kernel.settings import Settings

pytestmark = pytest.mark.unit  # pure: no NATS, no app, no database (make test-unit)


def test_one_url_is_one_server():
    settings = Settings(nats_url="nats://127.0.0.1:4222", _env_file=None)
    assert settings.nats_servers == ["nats://127.0.0.1:4222"]
    assert settings.nats_replicas == 1


def test_comma_separated_urls_are_the_seed_servers_of_a_cluster():
    settings = Settings(nats_url=" nats://a:4222, nats://b:4222 ,nats://c:4222", nats_replicas=3, _env_file=None)
    assert settings.nats_servers == ["nats://a:4222", "nats://b:4222", "nats://c:4222"]
    bus = Bus(settings.nats_server_url, client_name="t", replicas=settings.nats_replicas)
    assert bus.servers == settings.nats_servers and bus.replicas == 3


def test_default_url_derives_from_the_port_base():
    settings = Settings(port_base=9000, _env_file=None)
    assert settings.nats_servers == ["nats://127.0.0.1:9010"]


@pytest.mark.parametrize("url", ["", " , ,"])
def test_a_url_list_without_a_server_is_refused(url):
    with pytest.raises(ValidationError):
        Settings(nats_url=url, _env_file=None)


@pytest.mark.parametrize("replicas", [0, 6, -1])
def test_replicas_outside_one_to_five_are_refused(replicas):
    with pytest.raises(ValidationError):
        Settings(nats_replicas=replicas, _env_file=None)


def test_streams_carry_the_replica_count():
    assert stream_config("ACCOUNTS", 600.0).num_replicas == 1
    assert stream_config("ACCOUNTS", 600.0, 3).num_replicas == 3
