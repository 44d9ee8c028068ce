"""The STS gateway shared by the daemon's refresh threads."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from credhelper.profile import parse_profile
from credhelper.sts import StsGateway
from tests.conftest import UserHome


def test_profiles_sharing_a_source_share_one_client_however_many_threads_ask_at_once(
    home: UserHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home.root / ".aws" / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home.root / ".aws" / "config"))
    settings = {
        "role_arn": home.sts.role_arn,
        "source_profile": "bedrock-developer",
        "region": "us-east-1",
        "sts_endpoint_url": home.proxy.url,
    }
    profiles = [parse_profile(f"p{n}", settings, str(home.config_file), "test@host") for n in range(8)]
    gateway = StsGateway()
    start = threading.Barrier(len(profiles))
    clients: list[Any] = []

    def ask(number: int) -> None:
        start.wait()
        clients.append(gateway._client(profiles[number], None))

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(len(profiles))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(client) for client in clients}) == 1
    assert gateway.assume_role(profiles[0]).access_key_id.startswith("ASIA")


def test_sessions_share_the_models_read_once_per_data_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from credhelper.sts import botocore_session

    monkeypatch.delenv("AWS_DATA_PATH", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    first, second = botocore_session(), botocore_session()
    assert first is not second
    assert first.get_component("data_loader") is second.get_component("data_loader")
    models = tmp_path / "models"
    models.mkdir()
    monkeypatch.setenv("AWS_DATA_PATH", str(models))  # a user's own models: a loader that reads them
    own = botocore_session().get_component("data_loader")
    assert own is not first.get_component("data_loader")
    assert str(models) in own.search_paths
