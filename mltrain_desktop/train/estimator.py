"""The generic Estimator: a script, its parameters, a compute target and an environment."""
from __future__ import annotations

from ..core.conda_dependencies import CondaDependencies, conda_problem, is_azureml_package
from ..core.environment import compat_requested
from ..core.errors import UserErrorException
from ..core.run_spec import build_spec, distribution_spec, normalize_arguments
from ..core.runconfig import TensorflowConfiguration
from ..core.signatures import strict_kwargs

# Azure ML estimator arguments that mean nothing on this machine: accepted with one warning each.
AZURE_ONLY = ("vm_size", "vm_priority", "use_docker", "image_registry_details", "user_managed",
              "source_directory_data_store", "resume_from", "distributed_backend", "environment_definition",
              "_enable_optimized_mode", "_disable_validation", "_show_lint_warnings",
              "_show_package_version_warnings")


def _read_requirements(path) -> list[str]:
    try:
        with open(path, encoding="utf-8") as fh:
            lines = [ln.split(" #")[0].strip() for ln in fh]
    except OSError as exc:
        raise UserErrorException(f"cannot read the pip requirements file {path}: {exc.strerror or exc}") from exc
    return [ln for ln in lines if ln and not ln.startswith("#")]


class Estimator:
    framework_name: str | None = None

    @strict_kwargs(ignored=AZURE_ONLY)
    def __init__(self, source_directory, compute_target=None, entry_script=None, script_params=None,
                 node_count: int = 1, process_count_per_node: int = 1, distributed_training=None,
                 use_gpu: bool = False, pip_packages=None, conda_packages=None, framework_version=None,
                 environment_variables=None, custom_docker_image=None, shm_size=None, python=None,
                 inputs=None, max_run_duration_seconds=None, arguments=None, worker_count: int = 1,
                 parameter_server_count: int = 1, custom_docker_base_image=None, conda_dependencies_file=None,
                 conda_dependencies_file_path=None, pip_requirements_file=None, pip_requirements_file_path=None,
                 **_azure_only):
        self.source_directory = source_directory
        self.compute_target = compute_target
        self.entry_script = entry_script
        self.script_params = script_params or {}
        self.node_count = node_count
        self.process_count_per_node = process_count_per_node
        if (worker_count, parameter_server_count) != (1, 1):
            if distributed_training is None:
                distributed_training = TensorflowConfiguration(worker_count, parameter_server_count)
            elif not isinstance(distributed_training, TensorflowConfiguration):
                raise UserErrorException("worker_count and parameter_server_count go with a parameter-server job "
                                         "(distributed_training=TensorflowConfiguration())")
            else:
                distributed_training = TensorflowConfiguration(worker_count, parameter_server_count)
        self.distributed_training = distributed_training
        self.use_gpu = use_gpu
        self.conda_dependencies = CondaDependencies(conda_dependencies_file or conda_dependencies_file_path) \
            if (conda_dependencies_file or conda_dependencies_file_path) else CondaDependencies()
        for p in conda_packages or []:
            self.conda_dependencies.add_conda_package(p)
        requirements = pip_requirements_file or pip_requirements_file_path
        self.pip_packages = list(pip_packages or []) + (_read_requirements(requirements) if requirements else [])
        self.framework_version = framework_version
        self.environment_variables = dict(environment_variables or {})
        self.custom_docker_image = custom_docker_image or custom_docker_base_image
        self.shm_size = shm_size
        self.python = python
        self.max_run_duration_seconds = max_run_duration_seconds
        self.arguments = list(arguments or [])

    def _pip_for_run(self) -> list[str]:
        """Pip packages to install; refuses conda-only packages, skips azureml-* (see core/conda_dependencies)."""
        problem = conda_problem(self.conda_dependencies.conda_only_packages())
        if problem:
            raise UserErrorException(f"{type(self).__name__}: {problem}")
        pip = self.pip_packages + self.conda_dependencies.pip_packages
        return [p for p in pip if not (isinstance(p, str) and is_azureml_package(p))]  # build_spec names bad ones

    def to_spec(self) -> dict:
        docker = {}
        if self.custom_docker_image:
            docker["base_image"] = self.custom_docker_image
        if self.shm_size:
            docker["shm_size"] = self.shm_size
        spec = build_spec(
            source_directory=self.source_directory, entry_script=self.entry_script,
            arguments=normalize_arguments(script_params=self.script_params, arguments=self.arguments),
            compute_target=self.compute_target,
            use_gpu=self.use_gpu, pip_packages=self._pip_for_run(), framework_version=self.framework_version,
            environment_variables=self.environment_variables,
            distribution=distribution_spec(self.distributed_training, self.node_count, self.process_count_per_node),
            python=self.python, docker=docker, max_run_duration_seconds=self.max_run_duration_seconds)
        spec["framework"] = self.framework_name
        skipped = [p for p in self.pip_packages + self.conda_dependencies.pip_packages
                   if isinstance(p, str) and is_azureml_package(p)]
        if skipped:
            spec["environment"]["notes"] = [f"skipped {', '.join(skipped)}: the azureml names are served by "
                                            "mltrain_desktop.compat"]
        if compat_requested():
            spec["compat"] = True
        return spec
