"""Fixtures of the deploy tests."""

from __future__ import annotations

from pathlib import Path

import pytest

# The bundled PostgreSQL as a workshop's server, started exactly as the one-machine hub's tests start it.
from tests.hub.test_provision import hub_admin_url  # noqa: F401

yaml = pytest.importorskip("yaml", reason="pyyaml is in the `dev` extra: pip install -e '.[dev]'")


@pytest.fixture
def offline_kubeconfig(tmp_path, monkeypatch) -> Path:
    """A kubeconfig naming an API server nobody listens on: KubeSpawner loads it when constructed
    (in a hub pod it reads the pod's service account instead) and contacts it only to start a pod."""
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "offline", "cluster": {"server": "https://127.0.0.1:9"}}],
                "users": [{"name": "offline", "user": {"token": "none"}}],
                "contexts": [{"name": "offline", "context": {"cluster": "offline", "user": "offline"}}],
                "current-context": "offline",
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(path))
    # kubernetes_asyncio reads KUBECONFIG when it is imported; its default location is looked up per call.
    from kubernetes_asyncio.config import kube_config

    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    return path
