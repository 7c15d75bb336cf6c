"""Shared by the deploy tests: deploy/'s files, and the hub's config as the chart would build it.

The `jupyterhub` chart turns values.yaml into traitlets config in its own jupyterhub_config.py, which
runs in the hub pod and is not in this repository. `chart_config` does the same for the settings
deploy/values.yaml uses (each line names the chart's key and the trait it sets), then runs the
values' `hub.config` and `hub.extraConfig` as the chart does, so the result is the config the hub loads.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from traitlets.config import Config

from tests.cli_support import REPO

yaml = pytest.importorskip("yaml", reason="pyyaml is in the `dev` extra: pip install -e '.[dev]'")

DEPLOY = REPO / "deploy"


def load_yaml(name: str) -> Any:
    return yaml.safe_load((DEPLOY / name).read_text())


def load_manifests(name: str) -> dict[tuple[str, str], dict[str, Any]]:
    """(kind, name) -> the manifest, for every document of a multi-document file."""
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in yaml.safe_load_all((DEPLOY / name).read_text())}


def values() -> dict[str, Any]:
    return load_yaml("values.yaml")


def image(section: dict[str, Any]) -> str:
    return f"{section['image']['name']}:{section['image']['tag']}"


def literal_env(env: dict[str, Any]) -> dict[str, str]:
    """hub.extraEnv's literal values (the chart's "basic notation"); secretKeyRef ones are left out."""
    return {name: value for name, value in env.items() if isinstance(value, str)}


def secret_refs(env: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """hub.extraEnv's variables read from a Secret: name -> (secret, key)."""
    refs = {}
    for name, value in env.items():
        if isinstance(value, dict) and "secretKeyRef" in value.get("valueFrom", {}):
            ref = value["valueFrom"]["secretKeyRef"]
            refs[name] = (ref["name"], ref["key"])
    return refs


def chart_config(vals: dict[str, Any]) -> Config:
    """The hub's traitlets config from `vals` (the subset of the chart's mapping deploy/values.yaml uses).

    Run with the hub pod's environment in os.environ: hub.extraConfig reads it."""
    c = Config()
    c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"  # the chart always sets it
    single = vals["singleuser"]
    c.KubeSpawner.image = image(single)  # singleuser.image.name + tag
    c.Spawner.cmd = single["cmd"]  # singleuser.cmd
    c.KubeSpawner.uid = single["uid"]  # singleuser.uid
    c.KubeSpawner.fs_gid = single["fsGid"]  # singleuser.fsGid
    c.KubeSpawner.start_timeout = single["startTimeout"]
    c.KubeSpawner.cpu_limit = single["cpu"]["limit"]  # singleuser.cpu.limit / guarantee
    c.KubeSpawner.cpu_guarantee = single["cpu"]["guarantee"]
    c.KubeSpawner.mem_limit = single["memory"]["limit"]  # singleuser.memory.limit / guarantee
    c.KubeSpawner.mem_guarantee = single["memory"]["guarantee"]
    storage = single["storage"]
    assert storage["type"] == "dynamic"
    # singleuser.storage.type dynamic: a PVC per user, mounted on homeMountPath (the chart's default
    # volume name template is volume-{user_server}; the claim is KubeSpawner's {pvc_name}).
    home = "volume-{user_server}"
    c.KubeSpawner.storage_pvc_ensure = True
    c.KubeSpawner.storage_capacity = storage["capacity"]
    c.KubeSpawner.storage_access_modes = storage["dynamic"]["storageAccessModes"]
    volumes = {home: {"name": home, "persistentVolumeClaim": {"claimName": "{pvc_name}"}}}
    mounts = {home: {"name": home, "mountPath": storage["homeMountPath"]}}
    for volume in storage.get("extraVolumes") or []:  # singleuser.storage.extraVolumes (list form)
        volumes[volume["name"]] = volume
    for index, mount in enumerate(storage.get("extraVolumeMounts") or []):
        mounts[f"{index}-{mount['name']}"] = mount
    c.KubeSpawner.volumes = volumes
    c.KubeSpawner.volume_mounts = mounts
    for section, traits in vals["hub"]["config"].items():  # hub.config: passed through as is
        for trait, value in traits.items():
            setattr(c[section], trait, value)
    for _, source in sorted(vals["hub"]["extraConfig"].items()):  # hub.extraConfig: run with `c` in scope
        exec(compile(source, "hub.extraConfig", "exec"), {"c": c})
    return c


def hub_environment(monkeypatch, **secrets: str) -> None:
    """The hub pod's environment: values.yaml's literal hub.extraEnv, plus the given Secret values."""
    for name in (*secret_refs(values()["hub"]["extraEnv"]), *literal_env(values()["hub"]["extraEnv"])):
        monkeypatch.delenv(name, raising=False)
    for name, value in {**literal_env(values()["hub"]["extraEnv"]), **secrets}.items():
        monkeypatch.setenv(name, value)
    assert all(os.environ.get(name) for name in secrets)
