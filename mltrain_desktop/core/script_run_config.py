"""ScriptRunConfig and Environment: what to run, where, and with which packages."""
from __future__ import annotations

from .run_spec import build_spec, distribution_spec, normalize_arguments


class Environment:
    """An interpreter (or a Docker base image) plus pip packages; built once per distinct spec."""

    def __init__(self, name: str = "default", pip_packages=None, python: str | None = None,
                 docker_image: str | None = None, framework_version: str | None = None):
        self.name = name
        self.pip_packages = list(pip_packages or [])
        self.python = python
        self.docker_image = docker_image
        self.framework_version = framework_version
        self.environment_variables: dict[str, str] = {}


class ScriptRunConfig:
    def __init__(self, source_directory, script=None, arguments=None, compute_target=None,
                 environment: Environment | None = None, distributed_job_config=None,
                 node_count: int = 1, use_gpu: bool = False, max_run_duration_seconds=None,
                 command=None, distributed_training=None):
        self.source_directory = source_directory
        self.script = script
        self.arguments = list(arguments or [])
        self.compute_target = compute_target
        self.environment = environment or Environment()
        if distributed_job_config is not None and distributed_training is not None:
            from .errors import UserErrorException
            raise UserErrorException("give distributed_job_config or distributed_training, not both")
        self.distributed_job_config = distributed_job_config or distributed_training
        self.node_count = node_count
        self.use_gpu = use_gpu
        self.max_run_duration_seconds = max_run_duration_seconds

    def to_spec(self) -> dict:
        env = self.environment
        return build_spec(
            source_directory=self.source_directory, entry_script=self.script,
            arguments=normalize_arguments(arguments=self.arguments), compute_target=self.compute_target,
            use_gpu=self.use_gpu, pip_packages=env.pip_packages, framework_version=env.framework_version,
            environment_variables=env.environment_variables,
            distribution=distribution_spec(self.distributed_job_config, self.node_count, 1),
            python=env.python, docker={"base_image": env.docker_image} if env.docker_image else None,
            max_run_duration_seconds=self.max_run_duration_seconds)
