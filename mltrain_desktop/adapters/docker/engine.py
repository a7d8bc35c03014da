"""A Docker engine, local or remote: target validation, connecting, probing (versions, runtimes, GPUs).

A ``docker`` compute target's description is validated here and its engine probed: version,
runtimes, whether an NVIDIA runtime or GPU device driver is there, CPUs, memory. An engine that
does not answer, or answers "permission denied", gives a message that says what to do.

The engine is reached through the Docker SDK: the default socket or ``DOCKER_HOST`` when
``base_url`` is None, else ``unix://``, ``tcp://`` (with ``tls``) or ``ssh://`` URLs.
"""
from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

KIND = "docker"
DEFAULT_IMAGE = "mltrain-tf:2.21"
DEFAULT_SHM_SIZE = "2g"
_SHM_RE = re.compile(r"^\d+(\.\d+)?\s*[bkmgBKMG]?$")
_SCHEMES = ("unix://", "tcp://", "ssh://", "http://", "https://", "npipe://")
NVIDIA_TOOLKIT_HINT = (
    "install the NVIDIA Container Toolkit on the engine's machine "
    "(https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/install-guide.html), "
    "run 'sudo nvidia-ctk runtime configure --runtime=docker' and restart Docker"
)


class DockerEngineError(RuntimeError):
    """The Docker engine cannot be used; the message says why and what to do."""


# -- validation ------------------------------------------------------------------------------

def _positive_number(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")


def normalize_gpus(gpus) -> str | int | list[str]:
    """'all' | N>=1 | [device ids]; raises ValueError otherwise.

    Strings as ``docker run --gpus`` takes them: "all", "2" or "count=2" (a number of GPUs),
    "device=1" or "device=0,2" (device ids or UUIDs), or "0,2" / "0" (ids: a leading 0 or a
    comma makes a list).
    """
    if gpus is None or gpus is True or (isinstance(gpus, str) and gpus.strip().lower() == "all"):
        return "all"
    if isinstance(gpus, bool):
        raise ValueError("gpus must be 'all', a number of GPUs or a list of device ids, not False")
    if isinstance(gpus, int):
        if gpus < 1:
            raise ValueError(f"gpus must be at least 1 (or 'all'), got {gpus}")
        return gpus
    if isinstance(gpus, str):
        text = gpus.strip().strip("'\"").strip()
        if text.lower().startswith("count="):
            text = text[6:].strip()
            if text.lower() == "all":
                return "all"
            if not text.isdigit():
                raise ValueError(f"gpus count must be a whole number or 'all', got {gpus!r}")
        elif text.lower().startswith("device="):
            text = text[7:] + ","  # always device ids, even a single "1"
        if text.isdigit() and not text.startswith("0"):
            return normalize_gpus(int(text))
        gpus = [p for p in text.split(",") if p.strip()] or [""]
    if isinstance(gpus, (list, tuple)):
        ids = [str(g).strip() for g in gpus]
        if not ids or any(not i for i in ids):
            raise ValueError(f"gpus device ids must be non-empty, got {gpus!r}")
        return ids
    raise ValueError(f"gpus must be 'all', a number of GPUs or a list of device ids, got {gpus!r}")


MPI_LAUNCHER_CONTAINERS = "containers"
MPI_LAUNCHER_MPIRUN = "mpirun"
MPI_LAUNCHERS = (MPI_LAUNCHER_CONTAINERS, MPI_LAUNCHER_MPIRUN)


def validate(config: dict) -> dict:
    cfg = dict(config)
    url = cfg.get("base_url")
    if url is not None:
        if not isinstance(url, str) or not url.startswith(_SCHEMES):
            raise ValueError(f"base_url {url!r} must start with one of {', '.join(_SCHEMES)} "
                             "(or be None for DOCKER_HOST / the default socket)")
    tls = cfg.get("tls")
    if tls not in (None, False, True) and not isinstance(tls, dict):
        raise ValueError("tls must be True (DOCKER_CERT_PATH) or a dict of ca_cert/client_cert/client_key paths")
    if isinstance(tls, dict):
        unknown = set(tls) - {"ca_cert", "client_cert", "client_key", "verify", "assert_hostname"}
        if unknown:
            raise ValueError(f"unknown tls keys {sorted(unknown)}; use ca_cert, client_cert, client_key, verify")
        for key in ("ca_cert", "client_cert", "client_key"):
            if tls.get(key):
                p = Path(tls[key]).expanduser()
                if not p.is_file():
                    raise ValueError(f"tls {key} file {p} does not exist")
                tls[key] = str(p.resolve())
    image = cfg.get("image")
    if image is not None and (not isinstance(image, str) or not image.strip() or " " in image.strip()):
        raise ValueError(f"image {image!r} must be an image reference such as 'mltrain-tf:2.21'")
    shm = cfg.get("shm_size", DEFAULT_SHM_SIZE)
    if shm is not None and not (isinstance(shm, int) and not isinstance(shm, bool) and shm > 0) \
            and not (isinstance(shm, str) and _SHM_RE.match(shm.strip())):
        raise ValueError(f"shm_size {shm!r} must be a size such as '2g', '512m' or a number of bytes")
    for key in ("cpus", "memory_gb"):
        if cfg.get(key) is not None:
            _positive_number(key, cfg[key])
    cfg["gpus"] = normalize_gpus(cfg.get("gpus", "all"))
    ca = cfg.get("ca_certificates")
    if ca is not None:
        p = Path(ca).expanduser()
        if not p.is_file():
            raise ValueError(f"ca_certificates {p} does not exist; give the path of a PEM bundle "
                             "(e.g. /etc/ssl/certs/ca-certificates.crt)")
        head = p.read_bytes()[:1 << 20]
        if b"-----BEGIN CERTIFICATE-----" not in head:
            raise ValueError(f"ca_certificates {p} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
        cfg["ca_certificates"] = str(p.resolve())
    idx = cfg.get("pip_index_url")
    if idx is not None and (not isinstance(idx, str) or not re.match(r"^(https?|file)://\S+$", idx)):
        raise ValueError(f"pip_index_url {idx!r} must be an http(s):// or file:// URL")
    net = cfg.get("network")
    if net is not None and (not isinstance(net, str) or not net):
        raise ValueError("network must be a Docker network name such as 'bridge' or 'host'")
    n = cfg.get("max_concurrent_runs", 1)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"max_concurrent_runs must be a whole number of at least 1, got {n!r}")
    launcher = cfg.get("mpi_launcher")
    if launcher not in (None, *MPI_LAUNCHERS):
        raise ValueError(f"mpi_launcher {launcher!r} must be {MPI_LAUNCHER_CONTAINERS!r} (one container per rank, "
                         f"with TF_CONFIG) or {MPI_LAUNCHER_MPIRUN!r} (node containers with sshd, mpirun over SSH)")
    extra = cfg.get("mpirun_args")
    if extra is not None and (not isinstance(extra, (list, tuple)) or not all(isinstance(a, str) for a in extra)):
        raise ValueError(f"mpirun_args must be a list of strings such as ['--mca', 'btl', '^openib'], got {extra!r}")
    return cfg


# -- connecting --------------------------------------------------------------------------------

def engine_url(config: dict) -> str:
    """The engine's address as the user would read it."""
    return config.get("base_url") or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def is_local_engine(config: dict) -> bool:
    """True when the engine runs on this machine, so host paths can be bind-mounted."""
    return engine_url(config).startswith(("unix://", "npipe://"))


def _tls_config(tls):
    if not tls:
        return False
    import docker
    if tls is True:
        cert_path = os.environ.get("DOCKER_CERT_PATH") or os.path.expanduser("~/.docker")
        tls = {"ca_cert": os.path.join(cert_path, "ca.pem"), "client_cert": os.path.join(cert_path, "cert.pem"),
               "client_key": os.path.join(cert_path, "key.pem"), "verify": True}
    client_cert = (tls["client_cert"], tls["client_key"]) if tls.get("client_cert") else None
    return docker.tls.TLSConfig(client_cert=client_cert, ca_cert=tls.get("ca_cert"),
                                verify=tls.get("verify", True))


def explain_engine_error(exc: BaseException, url: str) -> str:
    """A message for an engine that cannot be used: what happened and what to do (pure)."""
    parts = []
    e: BaseException | None = exc
    while e is not None and len(parts) < 8:
        parts.append(f"{type(e).__name__}: {e}")
        e = e.__cause__ or e.__context__
    text = " | ".join(parts)
    low = text.lower()
    if "paramiko" in low:
        return (f"the Docker engine at {url} is reached over ssh, which needs the Python package paramiko "
                "in the app's environment: pip install paramiko (the ssh command and ~/.ssh/config are then "
                "used), or expose the engine over tcp:// with TLS.")
    if "permission denied" in low or "errno 13" in low or "PermissionError" in text:
        return (f"permission denied talking to the Docker engine at {url}: this user may not use it. "
                "Add yourself to the docker group ('sudo usermod -aG docker $USER', then log out and in), "
                "or use rootless Docker (DOCKER_HOST=unix://$XDG_RUNTIME_DIR/docker.sock).")
    if url.startswith("unix://") and ("no such file" in low or "filenotfounderror" in low
                                      or "connection refused" in low or "errno 111" in low or "errno 2" in low):
        return (f"the Docker engine is not running: nothing answers at {url}. Start it "
                "('sudo systemctl start docker', or scripts/ensure_dockerd.sh), or point DOCKER_HOST "
                "(or the target's base_url) at the engine you use.")
    if "ssl" in low or "certificate" in low or "tls" in low:
        return (f"TLS failed talking to the Docker engine at {url}: {parts[0]}. Check the target's tls "
                "certificates (ca_cert, client_cert, client_key) or DOCKER_CERT_PATH.")
    if "timed out" in low or "timeout" in low:
        return (f"the Docker engine at {url} did not answer in time. Check that the machine is up and "
                "the engine runs there, and that DOCKER_HOST/base_url is right.")
    if "connection refused" in low or "name or service not known" in low or "no route" in low \
            or "nodename nor servname" in low or "failed to resolve" in low or "max retries" in low:
        return (f"cannot reach the Docker engine at {url} ({parts[-1]}). Start dockerd there, check the "
                "host name and port, or set DOCKER_HOST/base_url to an engine that runs.")
    return (f"cannot use the Docker engine at {url}: {parts[0]}. Check that dockerd runs "
            "('docker info') and that DOCKER_HOST/base_url points at it.")


def api_client(config: dict | None = None, timeout: float = 60):
    """A low-level ``docker.APIClient`` for the target, or DockerEngineError with what to do."""
    try:
        import docker
    except ImportError as exc:  # pragma: no cover - docker is a dependency of the app
        raise DockerEngineError("the Docker SDK for Python is not installed: pip install 'docker>=7'") from exc
    config = config or {}
    url = engine_url(config)
    try:
        if config.get("base_url"):
            kwargs = {"base_url": config["base_url"], "version": "auto", "timeout": timeout}
            if config.get("tls"):
                kwargs["tls"] = _tls_config(config["tls"])
            if config["base_url"].startswith("ssh://"):
                kwargs["use_ssh_client"] = True
            api = docker.APIClient(**kwargs)
        else:
            kw = docker.utils.kwargs_from_env()
            if config.get("tls") and "tls" not in kw:
                kw["tls"] = _tls_config(config["tls"])
            if str(kw.get("base_url", "")).startswith("ssh://"):
                kw["use_ssh_client"] = True  # the ssh command and its config, not paramiko
            api = docker.APIClient(version="auto", timeout=timeout, **kw)
        api.ping()
        return api
    except DockerEngineError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure to connect becomes a clear message
        raise DockerEngineError(explain_engine_error(exc, url)) from exc


def client_over(api):
    """A high-level ``docker.DockerClient`` sharing an existing low-level ``APIClient``."""
    import docker
    client = docker.DockerClient.__new__(docker.DockerClient)
    client.api = api
    return client


def docker_client(config: dict | None = None, timeout: float = 60):
    """The high-level ``docker.DockerClient`` over :func:`api_client`."""
    return client_over(api_client(config, timeout))


def for_each_engine(target_configs: list[dict], action, timeout: float = 3.0) -> list:
    """Calls ``action(api)`` once per distinct engine of ``target_configs`` and gathers the lists it
    returns; never raises. An engine that does not answer within ``timeout`` seconds is skipped."""
    gathered, seen = [], set()
    for cfg in target_configs:
        url = engine_url(cfg or {})
        if url in seen:
            continue
        seen.add(url)
        try:
            api = api_client(cfg or {}, timeout=timeout)
        except DockerEngineError:
            continue
        try:
            gathered += action(api)
        except Exception:  # noqa: BLE001 - a clean-up at start-up must not fail the caller
            pass
        finally:
            api.close()
    return gathered


# -- an engine that stops answering ------------------------------------------------------------

ENGINE_PATIENCE_S = 60.0  # how long the engine may not answer before a run counts as lost


class EngineSilence:
    """Since when the Docker engine has not answered a run's handle; each change is logged once.

    ``was_silent`` stays True once the engine failed to answer: a container that then turns out
    stopped was most likely stopped by the engine going down (a restart)."""

    def __init__(self, log):
        self.log = log
        self.since: float | None = None
        self.was_silent = False

    def failed(self, exc: Exception) -> None:
        self.was_silent = True
        if self.since is None:
            self.since = time.monotonic()
            self.log(f"[mltrain] the Docker engine does not answer ({type(exc).__name__}: {exc}); waiting")

    def answered(self) -> None:
        if self.since is not None:
            self.log("[mltrain] the Docker engine answers again")
            self.since = None

    def too_long(self) -> bool:
        return self.since is not None and time.monotonic() - self.since >= ENGINE_PATIENCE_S

    @staticmethod
    def lost_detail(engine: str, what: str) -> str:
        """Why a run failed when the engine stopped answering while ``what`` (its containers) ran."""
        return (f"the Docker engine ({engine}) stopped answering for {ENGINE_PATIENCE_S:.0f} s while {what} "
                "ran; check that dockerd runs ('docker info')")


# -- probing -------------------------------------------------------------------------------------

def _host_gpus() -> list[dict]:
    from ..gpus import list_gpus
    return list_gpus()


def nvidia_support(info: dict, local: bool) -> tuple[bool, str]:
    """Whether use_gpu can work on this engine, and how that was seen (from ``docker info``)."""
    runtimes = sorted((info.get("Runtimes") or {}).keys())
    if "nvidia" in runtimes:
        return True, "NVIDIA runtime registered"
    if local and shutil.which("nvidia-container-runtime-hook"):
        return True, "NVIDIA device driver (nvidia-container-runtime-hook)"
    cdi = info.get("CDISpecDirs")
    if cdi and local and any(Path(d, "nvidia.yaml").exists() or Path(d, "nvidia.json").exists() for d in cdi):
        return True, "NVIDIA CDI specification"
    return False, "no NVIDIA runtime or GPU device driver"


def probe(config: dict, check_image: bool = True) -> dict:
    """Connects to the engine and reports what it offers; never raises."""
    url = engine_url(config)
    try:
        api = api_client(config, timeout=15)
    except DockerEngineError as exc:
        return {"state": "Failed", "detail": str(exc), "engine": {"url": url}}
    try:
        version = api.version()
        info = api.info()
    except Exception as exc:  # noqa: BLE001
        return {"state": "Failed", "detail": explain_engine_error(exc, url), "engine": {"url": url}}
    local = is_local_engine(config)
    nvidia, how = nvidia_support(info, local)
    gpus: list[dict] = _host_gpus() if (nvidia and local) else []
    engine = {
        "url": url,
        "version": version.get("Version"),
        "api_version": version.get("ApiVersion"),
        "os": f"{version.get('Os', '?')}/{version.get('Arch', '?')}",
        "runtimes": sorted((info.get("Runtimes") or {}).keys()),
        "default_runtime": info.get("DefaultRuntime"),
        "nvidia": nvidia,
        "gpus": gpus,
        "cpus": info.get("NCPU"),
        "memory_bytes": info.get("MemTotal"),
        "local": local,
        "name": info.get("Name"),
    }
    detail = [f"Docker {engine['version']} ({engine['os']}) at {url}: {engine['cpus']} CPUs, "
              f"{(engine['memory_bytes'] or 0) / 2**30:.1f} GiB memory, runtimes {', '.join(engine['runtimes']) or '?'}"]
    if nvidia:
        detail.append(f"GPUs: {how}" + (f", {len(gpus)} GPU(s): " + ", ".join(g['name'] for g in gpus) if gpus else ""))
    else:
        detail.append(f"no GPU support ({how}): use_gpu runs will fail; to use GPUs, {NVIDIA_TOOLKIT_HINT}")
    if not local:
        detail.append("remote engine: the workspace's run folders must exist at the same paths on that machine")
    if check_image:
        image = config.get("image") or DEFAULT_IMAGE
        try:
            api.inspect_image(image)
            engine["image_present"] = True
            detail.append(f"image {image} present")
        except Exception:  # noqa: BLE001 - docker.errors.ImageNotFound or any API error
            engine["image_present"] = False
            detail.append(f"image {image} is not on the engine yet (it will be pulled at the first run; "
                          "without a registry build it first, e.g. scripts/docker_base_image.sh)")
    try:
        api.close()
    except Exception:  # noqa: BLE001
        pass
    return {"state": "Succeeded", "detail": "; ".join(detail), "engine": engine, "gpus": gpus,
            "cpus": engine["cpus"], "memory_bytes": engine["memory_bytes"]}


__all__ = ["DockerEngineError", "validate", "probe", "api_client", "docker_client", "client_over",
           "for_each_engine", "EngineSilence", "ENGINE_PATIENCE_S",
           "explain_engine_error", "normalize_gpus", "nvidia_support", "DEFAULT_IMAGE", "NVIDIA_TOOLKIT_HINT",
           "MPI_LAUNCHERS", "MPI_LAUNCHER_CONTAINERS", "MPI_LAUNCHER_MPIRUN"]
