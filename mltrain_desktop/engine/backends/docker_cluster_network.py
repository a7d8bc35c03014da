"""A distributed Docker run's own bridge network: its removal, and the clean-up of networks whose run is over.

The network is created at launch and removed when the run ends (every path: success, failure,
cancel, a failed launch); what a crashed client left is removed by :func:`clean_orphan_networks`,
which touches only networks labelled for this workspace whose run is not live.
"""
from __future__ import annotations

import time

from ...adapters.docker import labels as lb
from ...adapters.docker.engine import DockerEngineError, api_client, for_each_engine


def remove_network(api, network_id: str | None, log=None, api_containers_too: bool = False) -> bool:
    """Removes a network (retrying while endpoints are being released); True when it is gone."""
    import docker
    if not network_id:
        return True
    for attempt in range(25):
        try:
            if api_containers_too and attempt == 0:
                info = api.inspect_network(network_id)
                for cid in (info.get("Containers") or {}):
                    try:
                        api.remove_container(cid, force=True)
                    except docker.errors.APIError:
                        pass
            api.remove_network(network_id)
            return True
        except docker.errors.NotFound:
            return True
        except docker.errors.APIError as exc:
            if "active endpoints" in str(exc) and attempt < 24:
                time.sleep(0.2)
                continue
            if log:
                log(f"[mltrain] could not remove the network {network_id[:12]}: {exc.explanation or exc}")
            return False
        except Exception as exc:  # noqa: BLE001 - an engine that does not answer
            if log:
                log(f"[mltrain] could not remove the network {network_id[:12]}: {exc}")
            return False
    return False


def _over_run(labels: dict | None, ws: str, live: set[str]) -> bool:
    """The labels are this workspace's and name a run as owner that is not live (never an endpoint or a build)."""
    labels = labels or {}
    owner = lb.owner_of(labels)
    return labels.get(lb.WORKSPACE) == ws and owner is not None and owner[0] == lb.OWNER_RUN and owner[1] not in live


def clean_orphan_networks(workspace_dir, live_run_ids, config: dict | None = None, api=None) -> list[str]:
    """Removes the networks of this workspace whose owner is a run that is not live; returns their names.

    The run's containers still attached to such a network are removed first; anything else on it
    (another owner's container, or one with no mltrain labels) is left, and so is the network then.
    ``live_run_ids``: runs that are not terminal. An engine that does not answer removes nothing
    (returns []).
    """
    import docker
    own_api = api is None
    if own_api:
        try:
            api = api_client(config or {}, timeout=15)
        except DockerEngineError:
            return []
    ws = lb.workspace_value(workspace_dir)
    live = set(live_run_ids)
    removed = []
    try:
        for net in api.networks(filters=lb.workspace_filters(workspace_dir)):
            if not _over_run(net.get("Labels"), ws, live):
                continue
            try:
                info = api.inspect_network(net["Id"])
            except docker.errors.NotFound:
                continue
            for cid in (info.get("Containers") or {}):
                try:
                    c = api.inspect_container(cid)
                except docker.errors.NotFound:
                    continue
                if _over_run((c.get("Config") or {}).get("Labels"), ws, live):
                    try:
                        api.remove_container(cid, force=True)
                    except docker.errors.APIError:
                        pass
            if remove_network(api, net["Id"]):
                removed.append(net.get("Name") or net["Id"][:12])
    except Exception:  # noqa: BLE001 - cleanup must never fail its caller
        pass
    finally:
        if own_api:
            api.close()
    return removed


def clean_orphan_networks_for_targets(workspace_dir, target_configs: list[dict], live_run_ids,
                                      timeout: float = 3.0) -> list[str]:
    """clean_orphan_networks on each distinct engine of the workspace's docker targets; never raises."""
    return for_each_engine(target_configs,
                           lambda api: clean_orphan_networks(workspace_dir, live_run_ids, api=api), timeout)


__all__ = ["clean_orphan_networks", "clean_orphan_networks_for_targets", "remove_network"]
