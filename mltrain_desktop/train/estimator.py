"""The generic Estimator: a script, its parameters, a compute target and an environment."""
from __future__ import annotations

from ..core.run_spec import build_spec, distribution_spec, normalize_arguments


class Estimator:
    framework_name: str | None = None

    def __init__(self, source_directory, compute_target=None, entry_script=None, script_params=None,
                 node_count: int = 1, process_count_per_node: int = 1, distributed_training=None,
                 use_gpu: bool = False, pip_packages=None, conda_packages=None, framework_version=None,
                 environment_variables=None, custom_docker_image=None, shm_size=None, python=None,
                 inputs=None, max_run_duration_seconds=None, arguments=None, **_unused):
        self.source_directory = source_directory
        self.compute_target = compute_target
        self.entry_script = entry_script
        self.script_params = script_params or {}
        self.node_count = node_count
        self.process_count_per_node = process_count_per_node
        self.distributed_training = distributed_training
        self.use_gpu = use_gpu
        self.pip_packages = list(pip_packages or []) + list(conda_packages or [])
        self.framework_version = framework_version
        self.environment_variables = dict(environment_variables or {})
        self.custom_docker_image = custom_docker_image
        self.shm_size = shm_size
        self.python = python
        self.max_run_duration_seconds = max_run_duration_seconds
        self.arguments = list(arguments or [])

    def to_spec(self) -> dict:
        docker = {}
        if self.custom_docker_image:
            docker["base_image"] = self.custom_docker_image
        if self.shm_size:
            docker["shm_size"] = self.shm_size
        spec = build_spec(
            source_directory=self.source_directory, entry_script=self.entry_script,
            arguments=normalize_arguments(script_params=self.script_params, arguments=self.arguments), compute_target=self.compute_target,
            use_gpu=self.use_gpu, pip_packages=self.pip_packages, framework_version=self.framework_version,
            environment_variables=self.environment_variables,
            distribution=distribution_spec(self.distributed_training, self.node_count, self.process_count_per_node),
            python=self.python, docker=docker, max_run_duration_seconds=self.max_run_duration_seconds)
        spec["framework"] = self.framework_name
        return spec
