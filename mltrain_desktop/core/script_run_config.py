"""ScriptRunConfig: what to run, where, and in which Environment (defined in :mod:`.environment`)."""
from __future__ import annotations

from .environment import Environment, compat_requested
from .run_spec import build_spec, distribution_spec, normalize_arguments
from .signatures import strict_kwargs

# Azure ML arguments that mean nothing on this machine: accepted with one warning each.
AZURE_ONLY = ("run_config", "resume_from", "docker_runtime_config", "_telemetry_values")


class ScriptRunConfig:
    @strict_kwargs(ignored=AZURE_ONLY)
    def __init__(self, source_directory, script=None, arguments=None, compute_target=None,
                 environment: Environment | None = None, distributed_job_config=None,
                 node_count: int = 1, use_gpu: bool = False, max_run_duration_seconds=None,
                 command=None, distributed_training=None, **_azure_only):
        from .errors import UserErrorException
        if command is not None:
            raise UserErrorException("command= is not supported here; give script='train.py' and arguments=[...]")
        self.source_directory = source_directory
        self.script = script
        self.arguments = list(arguments or [])
        self.compute_target = compute_target
        if environment is not None and not isinstance(environment, Environment):
            raise UserErrorException("environment must be an Environment, e.g. Environment.get(ws, 'name')")
        self.environment = environment or Environment()
        if distributed_job_config is not None and distributed_training is not None:
            raise UserErrorException("give distributed_job_config or distributed_training, not both")
        self.distributed_job_config = distributed_job_config or distributed_training
        self.node_count = node_count
        self.use_gpu = use_gpu
        self.max_run_duration_seconds = max_run_duration_seconds

    def to_spec(self) -> dict:
        env = self.environment
        run_env = env.run_environment()
        spec = build_spec(
            source_directory=self.source_directory, entry_script=self.script,
            arguments=normalize_arguments(arguments=self.arguments), compute_target=self.compute_target,
            use_gpu=self.use_gpu, pip_packages=run_env["pip_packages"], framework_version=run_env["framework_version"],
            environment_variables=env.environment_variables,
            distribution=distribution_spec(self.distributed_job_config, self.node_count, 1),
            python=run_env["python"], docker={"base_image": run_env["docker_image"]} if run_env["docker_image"] else None,
            max_run_duration_seconds=self.max_run_duration_seconds)
        if run_env["notes"]:
            spec["environment"]["notes"] = run_env["notes"]
        if compat_requested():
            spec["compat"] = True
        return spec


__all__ = ["ScriptRunConfig", "Environment"]
