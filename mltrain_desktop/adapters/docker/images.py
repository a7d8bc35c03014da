"""Environment images for Docker runs: base image + pip packages (+ framework version), built once.

The spec (base image and its id, pip packages, framework and version) is hashed into the tag
``mltrain-env:<hash16>``; that tag is the cache key. An image with the tag is reused ("found
in cache"); otherwise it is built with the engine's classic builder through the low-level
API, each line of the build log handed to a callback as it comes (so cache hits such as
``---> Using cache`` show in the run's Preparing output). The build may use extra CA
certificates and a pip index URL from the compute target. A failed or canceled build leaves
nothing behind: the images and containers it made are removed by the ids it printed, never
by pruning anything else.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import io
import json
import queue
import re
import shlex
import tarfile
import threading
import time
from pathlib import Path
from typing import Callable

from ...domain.errors import PrepareError, UserErrorException

ENV_REPOSITORY = "mltrain-env"
RECIPE_VERSION = 1  # bump when the Dockerfile recipe changes, so old tags are not reused
CA_FILE = "mltrain-build-ca.pem"
CA_PATH_IN_IMAGE = "/etc/mltrain/build-ca.pem"
_TF_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tensorflow-intel", "tf-nightly")


@dataclasses.dataclass(frozen=True)
class EnvironmentSpec:
    base_image: str
    pip_packages: tuple[str, ...] = ()
    framework: str | None = None
    framework_version: str | None = None
    use_gpu: bool = False

    @property
    def needs_build(self) -> bool:
        """A spec with nothing to add runs on the base image as it is."""
        return bool(self.pip_packages) or self.framework_requirement is not None

    @property
    def framework_requirement(self) -> str | None:
        """The pip requirement that provides the framework when the base image lacks it."""
        if not self.framework_version or (self.framework or "TensorFlow").lower() != "tensorflow":
            return None
        v = str(self.framework_version).strip()
        pin = f"=={v}" if v.count(".") >= 2 else f"=={v}.*"
        return f"tensorflow[and-cuda]{pin}" if self.use_gpu else f"tensorflow-cpu{pin}"

    def to_dict(self) -> dict:
        return {"base_image": self.base_image, "pip_packages": list(self.pip_packages),
                "framework": self.framework, "framework_version": self.framework_version,
                "use_gpu": self.use_gpu}


def environment_spec(run_spec: dict, target_config: dict, default_image: str) -> EnvironmentSpec:
    """The environment a run asks for: its base image (run, then target, then default) and packages."""
    env = run_spec.get("environment") or {}
    docker = env.get("docker") or {}
    base = docker.get("base_image") or target_config.get("image") or default_image
    fv = env.get("framework_version")
    if fv is not None and not _VERSION.fullmatch(str(fv).strip()):
        raise UserErrorException(f"framework_version {fv!r} is not a version such as '2.21'; submit the run "
                                 "again with one")
    framework = run_spec.get("framework") or (env.get("framework")) or ("TensorFlow" if fv else None)
    return EnvironmentSpec(
        base_image=str(base).strip(),
        # pip resolves all requirements together: order does not matter, so it does not change the hash
        pip_packages=tuple(sorted({str(p).strip() for p in (env.get("pip_packages") or []) if str(p).strip()})),
        framework=framework if fv else None,
        framework_version=str(fv) if fv else None,
        use_gpu=bool(run_spec.get("use_gpu")) and bool(fv),
    )


def environment_hash(spec: EnvironmentSpec, base_image_id: str | None = None) -> str:
    """sha256 over the spec and the base image's id (a rebuilt base gives a new hash)."""
    doc = {"recipe": RECIPE_VERSION, **spec.to_dict(), "base_image_id": base_image_id or ""}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def environment_tag(spec: EnvironmentSpec, base_image_id: str | None = None) -> str:
    return f"{ENV_REPOSITORY}:{environment_hash(spec, base_image_id)[:16]}"


def _framework_check_command(spec: EnvironmentSpec) -> str | None:
    req = spec.framework_requirement
    if req is None:
        return None
    v = str(spec.framework_version).strip()
    if v.count(".") >= 2:
        pattern = f'*" {v} "*'
    else:
        pattern = f'*" {v} "*|*" {v}."*'
    names = ",".join(repr(n) for n in _TF_DISTRIBUTIONS)
    probe = ("import importlib.metadata as m; print(' '.join(d.version for d in m.distributions() "
             f"if (d.metadata['Name'] or '').lower().replace('_', '-') in ({names})))")
    return (f'TFV="$({_PY} -c "{probe}" 2>/dev/null || true)"; '
            f'case " $TFV " in {pattern}) echo "TensorFlow $TFV is in the base image";; '
            f'*) echo "TensorFlow {v} is not in the base image (found: ${{TFV:-none}}); installing {req}" '
            f'&& {_PY} -m pip install {shlex.quote(req)};; esac')


_PY = '"$(command -v python3 || echo python)"'
_VERSION = re.compile(r"[0-9]+(\.[0-9]+){0,2}")


def dockerfile(spec: EnvironmentSpec, env_hash: str, *, ca_certificates: bool = False,
               pip_index_url: str | None = None) -> str:
    """The Dockerfile for an environment image (pure: same inputs, same text).

    pip's settings are build ARGs: set while the RUN steps build, not kept in the image.
    """
    lines = [
        f"# MLTrain Desktop environment {env_hash[:16]} (recipe {RECIPE_VERSION})",
        f"FROM {spec.base_image}",
    ]
    args = ["PIP_DISABLE_PIP_VERSION_CHECK=1", "PIP_NO_CACHE_DIR=1", "PIP_BREAK_SYSTEM_PACKAGES=1",
            "PIP_ROOT_USER_ACTION=ignore", "PIP_PROGRESS_BAR=off", "PIP_NO_INPUT=1"]
    if ca_certificates:
        lines.append(f"COPY {CA_FILE} {CA_PATH_IN_IMAGE}")
        args += [f"PIP_CERT={CA_PATH_IN_IMAGE}", f"REQUESTS_CA_BUNDLE={CA_PATH_IN_IMAGE}",
                 f"SSL_CERT_FILE={CA_PATH_IN_IMAGE}"]
    if pip_index_url:
        args.append(f"PIP_INDEX_URL={pip_index_url}")
    lines.append("ARG " + " ".join(args))
    check = _framework_check_command(spec)
    if check:
        lines.append(f"RUN {check}")
    if spec.pip_packages:
        pkgs = " ".join(shlex.quote(p) for p in spec.pip_packages)
        lines.append(f"RUN {_PY} -m pip install {pkgs}")
    labels = {"mltrain.environment": env_hash[:16], "mltrain.base": spec.base_image,
              "mltrain.spec": json.dumps(spec.to_dict(), sort_keys=True, separators=(",", ":"))}
    lines.append("LABEL " + " ".join(f"{k}={json.dumps(v)}" for k, v in labels.items()))
    return "\n".join(lines) + "\n"


def build_context(dockerfile_text: str, ca_pem: bytes | None = None) -> bytes:
    """An uncompressed tar holding the Dockerfile (and the CA bundle), fixed mtimes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("Dockerfile", dockerfile_text.encode()), (CA_FILE, ca_pem)):
            if data is None:
                continue
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# -- talking to the engine ----------------------------------------------------------------------

def _short(image_id: str) -> str:
    return image_id.split(":", 1)[-1][:12]


def ensure_base_image(api, image: str, log: Callable[[str], None], pull: bool = True) -> str:
    """Returns the base image's id, pulling it if missing; PrepareError naming the image if neither works.

    Checked before anything runs: the engine's own answer for a missing image at container
    start is an opaque error.
    """
    import docker
    try:
        return api.inspect_image(image)["Id"]
    except docker.errors.ImageNotFound:
        pass
    except docker.errors.APIError as exc:
        raise PrepareError(f"cannot inspect the base image {image!r} on the Docker engine: {exc.explanation or exc}") from exc
    why = "pulling is turned off"
    if pull:
        log(f"[mltrain] base image {image} is not on the engine; pulling it")
        repo, tag = docker.utils.parse_repository_tag(image)
        try:
            last = ""
            for ev in api.pull(repo, tag=tag or "latest", stream=True, decode=True):
                if "error" in ev:
                    raise docker.errors.APIError(ev.get("error"))
                status = ev.get("status", "")
                if status and status != last and "Downloading" not in status and "Extracting" not in status:
                    log(f"[pull] {status} {ev.get('id', '')}".rstrip())
                    last = status
            return api.inspect_image(image)["Id"]
        except Exception as exc:  # noqa: BLE001
            why = getattr(exc, "explanation", None) or str(exc)
    raise PrepareError(
        f"the base image {image!r} is not on the Docker engine and could not be pulled ({why}). "
        f"Build or load it there first ('docker build -t {image} ...', or 'docker save' it on a connected "
        "machine and 'docker load' it here; scripts/docker_base_image.sh builds the default images), "
        "or choose an image the engine has ('docker images')."
    )


def _find_tag(api, tag: str) -> dict | None:
    import docker
    try:
        return api.inspect_image(tag)
    except docker.errors.ImageNotFound:
        return None


_ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_STEP_RE = re.compile(r"^ ---> ([0-9a-f]{12,64})\s*$")
_RUNNING_RE = re.compile(r"^ ---> Running in ([0-9a-f]{12,64})\s*$")


class _BuildLog:
    """Collects what a classic build prints: lines, the image ids and containers it made."""

    def __init__(self):
        self.image_ids: list[str] = []
        self.container_ids: list[str] = []
        self.lines: list[str] = []
        self.error: str | None = None
        self.final_id: str | None = None
        self.step: str | None = None
        self._partial = ""

    def feed(self, chunk: dict) -> list[str]:
        out = []
        if "error" in chunk or "errorDetail" in chunk:
            self.error = (chunk.get("errorDetail") or {}).get("message") or chunk.get("error") or "build failed"
            out.append(f"ERROR: {self.error}")
        if "aux" in chunk and isinstance(chunk["aux"], dict) and chunk["aux"].get("ID"):
            self.final_id = chunk["aux"]["ID"]
        text = chunk.get("stream")
        if text:
            text = self._partial + text
            parts = text.split("\n")
            self._partial = parts.pop()
            for line in parts:
                line = _ANSI_RE.sub("", line).rstrip("\r")
                if line.startswith("Step "):
                    self.step = line
                m = _RUNNING_RE.match(line)
                if m:
                    self.container_ids.append(m.group(1))
                else:
                    m = _STEP_RE.match(line)
                    if m:
                        self.image_ids.append(m.group(1))
                out.append(line)
        self.lines.extend(out)
        del self.lines[:-400]
        return out

    def flush(self) -> list[str]:
        if self._partial:
            line, self._partial = _ANSI_RE.sub("", self._partial), ""
            self.lines.append(line)
            return [line]
        return []


def remove_build_leftovers(api, image_ids: list[str], container_ids: list[str],
                           keep: set[str] | None = None) -> list[str]:
    """Removes the containers and images a build made, by id, newest first; nothing else.

    An image that something still uses (a tag, a child, a container) is refused by the engine
    and stays; ids in ``keep`` (the base image) are never touched.
    """
    import docker
    keep_short = {_short(k) for k in (keep or set())}
    removed = []
    for cid in container_ids:
        try:
            api.remove_container(cid, force=True)
            removed.append(cid[:12])
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError:
            pass
    for iid in reversed(list(dict.fromkeys(image_ids))):
        if _short(iid) in keep_short:
            continue
        try:
            api.remove_image(iid, force=False, noprune=True)
            removed.append(iid[:12])
        except (docker.errors.NotFound, docker.errors.APIError):
            pass
    return removed


@dataclasses.dataclass
class EnvironmentImage:
    tag: str
    image_id: str
    env_hash: str
    cached: bool
    seconds: float
    spec: EnvironmentSpec


class BuildCanceled(Exception):
    """The environment build stopped because the run was canceled."""


def ensure_environment_image(api, spec: EnvironmentSpec, *, log: Callable[[str], None],
                             ca_certificates: str | None = None, pip_index_url: str | None = None,
                             network: str | None = None, cancelled: Callable[[], bool] = lambda: False,
                             lock_dir: Path | None = None, pull_base: bool = True) -> EnvironmentImage:
    """Finds or builds the environment image for ``spec``; raises PrepareError or BuildCanceled."""
    t0 = time.monotonic()
    base_id = ensure_base_image(api, spec.base_image, log, pull=pull_base)
    if not spec.needs_build:
        log(f"[mltrain] environment: base image {spec.base_image} ({_short(base_id)}) as it is (no pip packages)")
        return EnvironmentImage(spec.base_image, base_id, "", True, time.monotonic() - t0, spec)
    h = environment_hash(spec, base_id)
    tag = f"{ENV_REPOSITORY}:{h[:16]}"
    with build_lock(lock_dir, f"docker-{h[:16]}", tag, log, cancelled):
        found = _find_tag(api, tag)
        if found is not None:
            log(f"[mltrain] environment image {tag} found in cache ({_short(found['Id'])}, built "
                f"{found.get('Created', '?')[:19]}): base {spec.base_image}, packages "
                f"{list(spec.pip_packages) or 'none'}")
            return EnvironmentImage(tag, found["Id"], h, True, time.monotonic() - t0, spec)
        ca_pem = Path(ca_certificates).read_bytes() if ca_certificates else None
        text = dockerfile(spec, h, ca_certificates=ca_pem is not None, pip_index_url=pip_index_url)
        log(f"[mltrain] building environment image {tag}: base {spec.base_image}, packages "
            f"{list(spec.pip_packages) or 'none'}"
            + (f", framework {spec.framework} {spec.framework_version}" if spec.framework_version else "")
            + (", extra CA certificates" if ca_pem else "") + (f", index {pip_index_url}" if pip_index_url else ""))
        image_id = _run_build(api, tag, build_context(text, ca_pem), log, cancelled, network, base_id)
        log(f"[mltrain] environment image {tag} built in {time.monotonic() - t0:.1f}s ({_short(image_id)})")
        return EnvironmentImage(tag, image_id, h, False, time.monotonic() - t0, spec)


@contextlib.contextmanager
def build_lock(lock_dir: Path | None, name: str, tag: str, log: Callable[[str], None],
               cancelled: Callable[[], bool] = lambda: False):
    """Holds ``<lock_dir>/<name>.lock`` while an image is found or built, so a concurrent build of the
    same image finishes first; raises BuildCanceled when the run is canceled while waiting."""
    if lock_dir is None:
        yield
        return
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f"{name}.lock", "w") as lock:
        said = False
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not said:
                    log(f"[mltrain] waiting for another build of image {tag} to finish")
                    said = True
                if cancelled():
                    raise BuildCanceled() from None
                time.sleep(0.5)
        yield


def _run_build(api, tag: str, context: bytes, log, cancelled, network, base_id) -> str:
    """Runs one classic build, streaming its lines; on cancel kills the step's container."""
    import docker
    blog = _BuildLog()
    q: queue.Queue = queue.Queue()

    def reader():
        try:
            for chunk in api.build(fileobj=io.BytesIO(context), custom_context=True, tag=tag, rm=True,
                                   forcerm=True, pull=False, decode=True, network_mode=network,
                                   timeout=None):
                q.put(("chunk", chunk))
        except Exception as exc:  # noqa: BLE001 - reported by the waiting thread
            q.put(("error", exc))
        q.put(("end", None))

    t = threading.Thread(target=reader, name="mltrain-docker-build", daemon=True)
    t.start()
    was_cancelled = False
    stream_error: Exception | None = None
    next_check = 0.0
    while True:
        try:
            kind, item = q.get(timeout=0.25)
        except queue.Empty:
            kind, item = None, None
        if kind == "chunk":
            for line in blog.feed(item):
                log(f"[build] {line}")
        elif kind == "error":
            stream_error = item
        elif kind == "end":
            break
        now = time.monotonic()
        if now >= next_check:
            next_check = now + 0.5
            if not was_cancelled and cancelled():
                was_cancelled = True
                log("[mltrain] cancel requested: stopping the environment build")
            if was_cancelled:
                for cid in blog.container_ids[-1:]:  # the step that runs now
                    try:
                        api.kill(cid)
                    except docker.errors.APIError:
                        pass
    t.join(timeout=5)
    for line in blog.flush():
        log(f"[build] {line}")
    if was_cancelled or cancelled():
        _remove_failed(api, tag, blog, base_id, log)
        raise BuildCanceled()
    if stream_error is not None or blog.error is not None:
        _remove_failed(api, tag, blog, base_id, log)
        raise PrepareError(build_failure_message(tag, blog, stream_error))
    final = _find_tag(api, tag)
    if final is None:
        _remove_failed(api, tag, blog, base_id, log)
        raise PrepareError(f"building the environment image {tag} ended without an image; see the build log above")
    return final["Id"]


def build_failure_message(tag: str, blog: "_BuildLog", stream_error: Exception | None = None) -> str:
    """What failed in a build, with the tool's own error lines (pip's), not the whole log."""
    why = blog.error or (getattr(stream_error, "explanation", None) or str(stream_error))
    m = re.search(r"returned a non-zero code: (\d+)", why or "")
    step = (blog.step or "").split(" : ", 1)
    where = f" at step {step[0][5:]} ({step[1][:160]})" if len(step) == 2 else ""
    head = f"building the environment image {tag} failed{where}"
    head += f": exit code {m.group(1)}" if m else f": {why}"
    lines = [l for l in blog.lines if l.strip() and not l.startswith(("Step ", " ---> ", "Removing intermediate",
                                                                       "ERROR: The command"))]
    errors = [l for l in lines if l.lstrip().startswith(("ERROR", "error:", "E: ", "fatal"))]
    shown = errors[-10:] or lines[-12:]
    return head + ("\n" + "\n".join(shown) if shown else "")


def _remove_failed(api, tag, blog: _BuildLog, base_id, log) -> None:
    removed = remove_build_leftovers(api, blog.image_ids, blog.container_ids, keep={base_id})
    if removed:
        log(f"[mltrain] removed {len(removed)} leftover(s) of the failed build {tag}: {', '.join(removed)}")


__all__ = ["EnvironmentSpec", "EnvironmentImage", "BuildCanceled", "environment_spec", "environment_hash",
           "environment_tag", "dockerfile", "build_context", "ensure_base_image", "ensure_environment_image",
           "remove_build_leftovers", "ENV_REPOSITORY", "build_lock"]
