"""The ``azureml`` module tree the compat layer serves: each module's names and where they live here.

A value ``"pkg.module:Name"`` is one name; ``"pkg.module:*"`` makes the azureml module an alias of a
whole module of this package.
"""
from __future__ import annotations

_CORE = "mltrain_desktop.core"
_TRAIN = "mltrain_desktop.train"

PACKAGES = {"azureml", "azureml.core", "azureml.core.compute", "azureml.train", "azureml.train.hyperdrive"}

TREE: dict[str, dict[str, str]] = {
    "azureml": {},
    "azureml.core": {
        "Workspace": f"{_CORE}.workspace:Workspace", "Experiment": f"{_CORE}.experiment:Experiment",
        "Run": f"{_CORE}.runs:Run", "Dataset": f"{_CORE}.dataset:Dataset", "Model": f"{_CORE}.model:Model",
        "ScriptRunConfig": f"{_CORE}.script_run_config:ScriptRunConfig",
        "Environment": f"{_CORE}.environment:Environment", "ComputeTarget": f"{_CORE}.compute:ComputeTarget",
        "Webservice": f"{_CORE}.webservice:Webservice", "VERSION": "mltrain_desktop:__version__",
        "__version__": "mltrain_desktop:__version__",
    },
    "azureml.core.workspace": {"Workspace": f"{_CORE}.workspace:Workspace"},
    "azureml.core.experiment": {"Experiment": f"{_CORE}.experiment:Experiment"},
    "azureml.core.compute": {
        "ComputeTarget": f"{_CORE}.compute:ComputeTarget", "AmlCompute": f"{_CORE}.compute:AmlCompute",
        "LocalCompute": f"{_CORE}.compute:LocalCompute", "DockerCompute": f"{_CORE}.compute_docker:DockerCompute",
    },
    "azureml.core.compute_target": {"ComputeTargetException": f"{_CORE}.compute_target:ComputeTargetException"},
    "azureml.core.dataset": {"Dataset": f"{_CORE}.dataset:Dataset"},
    "azureml.core.run": {"Run": f"{_CORE}.runs:Run"},
    "azureml.core.model": {"Model": f"{_CORE}.model:Model", "InferenceConfig": f"{_CORE}.webservice:InferenceConfig"},
    "azureml.core.webservice": {
        "Webservice": f"{_CORE}.webservice:Webservice", "AciWebservice": f"{_CORE}.webservice:AciWebservice",
        "LocalWebservice": f"{_CORE}.webservice:LocalWebservice",
    },
    "azureml.core.environment": {"Environment": f"{_CORE}.environment:Environment"},
    "azureml.core.conda_dependencies": {"CondaDependencies": f"{_CORE}.conda_dependencies:CondaDependencies"},
    "azureml.core.runconfig": {
        "MpiConfiguration": f"{_CORE}.runconfig:MpiConfiguration",
        "TensorflowConfiguration": f"{_CORE}.runconfig:TensorflowConfiguration",
    },
    "azureml.core.resource_configuration": {
        "ResourceConfiguration": f"{_CORE}.resource_configuration:ResourceConfiguration"},
    "azureml.core.script_run_config": {"ScriptRunConfig": f"{_CORE}.script_run_config:ScriptRunConfig"},
    "azureml.train": {},
    "azureml.train.dnn": {
        "TensorFlow": f"{_TRAIN}.dnn:TensorFlow", "Mpi": f"{_CORE}.runconfig:MpiConfiguration",
        "ParameterServer": f"{_CORE}.runconfig:TensorflowConfiguration",
    },
    "azureml.train.estimator": {"Estimator": f"{_TRAIN}.estimator:Estimator"},
    "azureml.train.hyperdrive": {"*": f"{_TRAIN}.hyperdrive:*"},
    "azureml.train.hyperdrive.parameter_expressions": {"*": f"{_TRAIN}.hyperdrive.distributions:*"},
    "azureml.exceptions": {
        "AzureMLException": f"{_CORE}.errors:MLTrainError", "UserErrorException": f"{_CORE}.errors:UserErrorException",
        "WorkspaceException": f"{_CORE}.errors:WorkspaceError", "ModelNotFoundException": f"{_CORE}.errors:ModelError",
        "ActivityFailedException": f"{_CORE}.errors:RunError",
        "ExperimentExecutionException": f"{_CORE}.errors:RunError",
        "ComputeTargetException": f"{_CORE}.compute_target:ComputeTargetException",
        "WebserviceException": f"{_CORE}.webservice:WebserviceException",
    },
    "azureml.telemetry": {"*": "mltrain_desktop.compat.telemetry:*"},
    "azureml.widgets": {"RunDetails": "mltrain_desktop.compat.run_details:RunDetails"},
}

# Inside a job only the in-job API exists (standard library only): the run of this process.
JOB_TREE: dict[str, dict[str, str]] = {
    "azureml": {},
    "azureml.core": {"Run": "mltrain_desktop.run:Run", "VERSION": "mltrain_desktop:__version__"},
    "azureml.core.run": {"Run": "mltrain_desktop.run:Run"},
}
