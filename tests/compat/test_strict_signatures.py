"""Unknown keyword arguments fail naming the nearest valid one; Azure-only ones warn once."""
from __future__ import annotations

import warnings

import pytest

from mltrain_desktop.core.script_run_config import ScriptRunConfig
from mltrain_desktop.core.webservice import AciWebservice, DockerWebservice, LocalWebservice
from mltrain_desktop.train.dnn import TensorFlow
from mltrain_desktop.train.estimator import Estimator


@pytest.mark.parametrize("call, bad, near", [
    (lambda: TensorFlow(source_directory=".", entry_script="t.py", scrpt_params={"--a": 1}), "scrpt_params",
     "script_params"),
    (lambda: Estimator(source_directory=".", node_cont=2), "node_count", "node_count"),
    (lambda: ScriptRunConfig(source_directory=".", scirpt="t.py"), "scirpt", "script"),
    (lambda: ScriptRunConfig(".", "t.py", argumnets=[]), "argumnets", "arguments"),
    (lambda: AciWebservice.deploy_configuration(cpu_core=1), "cpu_core", "cpu_cores"),
    (lambda: AciWebservice.deploy_configuration(memory_gbs=1), "memory_gbs", "memory_gb"),
    (lambda: LocalWebservice.deploy_configuration(prot=8890), "prot", "port"),
    (lambda: DockerWebservice.deploy_configuration(compute_target="d", imgae="x"), "imgae", "image"),
])
def test_unknown_keyword_names_the_nearest(call, bad, near):
    with pytest.raises(TypeError) as info:
        call()
    msg = str(info.value)
    assert "unexpected keyword argument" in msg and f"did you mean {near!r}" in msg
    assert bad.split("_")[0][:3] in msg


def test_a_far_off_keyword_lists_the_valid_ones():
    with pytest.raises(TypeError, match=r"'zzz'; valid arguments: .*script_params"):
        TensorFlow(source_directory=".", zzz=1)


def test_tensorflow_error_names_the_class_used():
    with pytest.raises(TypeError, match=r"^TensorFlow\(\) got an unexpected"):
        TensorFlow(source_directory=".", scrpt_params={})


def test_azure_only_argument_warns_once_and_is_ignored(tmp_path):
    (tmp_path / "t.py").write_text("print(1)\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = TensorFlow(source_directory=str(tmp_path), entry_script="t.py", vm_size="STANDARD_NC6",
                         use_docker=False)
        TensorFlow(source_directory=str(tmp_path), entry_script="t.py", vm_size="STANDARD_NC6")
    names = [str(w.message) for w in caught]
    assert sum("'vm_size' has no meaning" in n for n in names) == 1
    assert sum("'use_docker'" in n for n in names) == 1
    assert est.to_spec()["entry_script"] == "t.py"


def test_worker_count_makes_a_parameter_server_job(tmp_path):
    (tmp_path / "t.py").write_text("print(1)\n")
    spec = TensorFlow(source_directory=str(tmp_path), entry_script="t.py", worker_count=2,
                      parameter_server_count=1).to_spec()
    assert spec["distribution"] == {"kind": "parameter_server", "worker_count": 2, "parameter_server_count": 1}
    from mltrain_desktop.core.errors import UserErrorException
    from mltrain_desktop.core.runconfig import MpiConfiguration
    with pytest.raises(UserErrorException, match="go with a parameter-server job"):
        TensorFlow(source_directory=str(tmp_path), entry_script="t.py", worker_count=2,
                   distributed_training=MpiConfiguration())


def test_script_run_config_refuses_command_and_a_non_environment(tmp_path):
    from mltrain_desktop.core.errors import UserErrorException
    with pytest.raises(UserErrorException, match="command= is not supported"):
        ScriptRunConfig(str(tmp_path), command=["python", "t.py"])
    with pytest.raises(UserErrorException, match="environment must be an Environment"):
        ScriptRunConfig(str(tmp_path), "t.py", environment="tf-env")


def test_aci_deploy_configuration_bad_values():
    from mltrain_desktop.core.errors import UserErrorException
    with pytest.raises(UserErrorException, match="cpu_cores must be a positive number"):
        AciWebservice.deploy_configuration(cpu_cores=0)
    with pytest.raises(UserErrorException, match="memory_gb must be a positive number"):
        AciWebservice.deploy_configuration(memory_gb="lots")
    with pytest.raises(UserErrorException, match="tags must be a dict"):
        AciWebservice.deploy_configuration(tags=["a"])
    with pytest.raises(UserErrorException, match="not a TCP port"):
        LocalWebservice.deploy_configuration(port=70000)
    cfg = AciWebservice.deploy_configuration(cpu_cores=1, memory_gb=1, tags={"data": "mnist"}, description="d")
    assert cfg["resources"] == {"cpu": 1, "memory_in_gb": 1} and cfg["tags"] == {"data": "mnist"}
    assert cfg["auth_enabled"] is False and cfg["kind"] == "local"


def test_amlcompute_and_inference_config_are_strict_too(recwarn):
    from mltrain_desktop.core.compute import AmlCompute
    from mltrain_desktop.core.webservice import InferenceConfig
    with pytest.raises(TypeError, match="did you mean 'max_nodes'"):
        AmlCompute.provisioning_configuration(vm_size="STANDARD_NC6", max_node=4)
    cfg = AmlCompute.provisioning_configuration(vm_size="STANDARD_NC6", max_nodes=4, admin_username="me")
    assert cfg.config["max_concurrent_runs"] == 4
    assert any("'admin_username' has no meaning" in str(w.message) for w in recwarn)
    with pytest.raises(TypeError, match="did you mean 'entry_script'"):
        InferenceConfig(entry_scrpt="score.py")
    assert InferenceConfig("score.py", runtime="python").entry_script == "score.py"
