"""The cells of Azure ML's train-hyperparameter-tune-deploy-with-tensorflow notebook, shrunk to the sample
subset: workspace, dataset, AmlCompute target, TensorFlow estimator run, RunDetails, HyperDrive sweep, best run,
model registration, ACI deployment of score.py, service.run with bytes, requests.post, clean-up."""

CELLS = [
    "%load_ext mltrain_desktop",
    '''
import os
import shutil
import urllib

import azureml
from azureml.core import Experiment
from azureml.core import Workspace, Run

from azureml.core.compute import ComputeTarget, AmlCompute
from azureml.core.compute_target import ComputeTargetException
import azureml.core

print("SDK version:", azureml.core.VERSION)
''',
    '''
from azureml.telemetry import set_diagnostics_collection

set_diagnostics_collection(send_diagnostics=True)
''',
    '''
ws = Workspace.from_config()
print('Workspace name: ' + ws.name,
      'Azure region: ' + ws.location,
      'Subscription id: ' + ws.subscription_id,
      'Resource group: ' + ws.resource_group, sep='\\n')
''',
    '''
script_folder = './tf-mnist'
os.makedirs(script_folder, exist_ok=True)

exp = Experiment(workspace=ws, name='tf-mnist')
''',
    '''
from azureml.core.dataset import Dataset

web_paths = [os.path.abspath(os.path.join('data', f)) for f in (
    'train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz',
    't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz')]
dataset = Dataset.File.from_files(path=web_paths)
dataset = dataset.register(workspace=ws,
                           name='mnist-dataset',
                           description='training and test dataset',
                           create_new_version=True)

# list the files referenced by dataset
dataset.to_path()
''',
    '''
cluster_name = "gpu-cluster"

try:
    compute_target = ComputeTarget(workspace=ws, name=cluster_name)
    print('Found existing compute target')
except ComputeTargetException:
    print('Creating a new compute target...')
    compute_config = AmlCompute.provisioning_configuration(vm_size='STANDARD_NC6',
                                                           max_nodes=4)

    compute_target = ComputeTarget.create(ws, cluster_name, compute_config)

    compute_target.wait_for_completion(show_output=True, min_node_count=None, timeout_in_minutes=20)

# use get_status() to get a detailed status for the current cluster.
print(compute_target.get_status().serialize())
''',
    '''
shutil.copy('./tf_mnist.py', script_folder)
shutil.copy('./utils.py', script_folder)
''',
    '''
from azureml.train.dnn import TensorFlow

script_params = {
    '--data-folder': dataset.as_named_input('mnist').as_mount(),
    '--batch-size': 64,
    '--first-layer-neurons': 64,
    '--second-layer-neurons': 32,
    '--learning-rate': 0.05,
    '--epochs': 1,
    '--max-train-samples': 1000,
}

est = TensorFlow(source_directory=script_folder,
                 script_params=script_params,
                 compute_target=compute_target,
                 entry_script='tf_mnist.py',
                 pip_packages=['azureml-dataprep[pandas,fuse]'])
''',
    "run = exp.submit(est)",
    '''
from azureml.widgets import RunDetails

RunDetails(run).show()
''',
    "run.wait_for_completion(show_output=True)",
    '''
print("RUN STATUS:", run.get_status())
run.get_details()
''',
    "run.get_metrics()",
    "run.get_file_names()",
    '''
from azureml.train.hyperdrive import RandomParameterSampling, BanditPolicy, HyperDriveConfig, PrimaryMetricGoal
from azureml.train.hyperdrive import choice, loguniform

ps = RandomParameterSampling(
    {
        '--batch-size': choice(32, 64),
        '--first-layer-neurons': choice(16, 64),
        '--second-layer-neurons': choice(16, 32),
        '--learning-rate': loguniform(-4, -1)
    }
)
''',
    '''
est = TensorFlow(source_directory=script_folder,
                 script_params={'--data-folder': dataset.as_named_input('mnist').as_mount(),
                                '--epochs': 1, '--max-train-samples': 1000},
                 compute_target=compute_target,
                 entry_script='tf_mnist.py',
                 pip_packages=['azureml-dataprep[pandas,fuse]'])
''',
    "policy = BanditPolicy(evaluation_interval=2, slack_factor=0.1)",
    '''
htc = HyperDriveConfig(estimator=est,
                       hyperparameter_sampling=ps,
                       policy=policy,
                       primary_metric_name='val_accuracy',
                       primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
                       max_total_runs=2,
                       max_concurrent_runs=2)
''',
    "htr = exp.submit(config=htc)",
    "RunDetails(htr).show()",
    "htr.wait_for_completion(show_output=True)",
    "assert(htr.get_status() == \"Completed\")",
    '''
best_run = htr.get_best_run_by_primary_metric()
print("BEST RUN:", best_run.id)
''',
    "print(best_run.get_details()['runDefinition']['arguments'])",
    "print(best_run.get_file_names())",
    '''
model = best_run.register_model(model_name='tf-dnn-mnist', model_path='outputs/model')
print(model.name, model.id, model.version, sep='\\t')
''',
    '''%%writefile score.py
import json
import numpy as np
import os
import tensorflow as tf


def init():
    global tf_model
    model_root = os.getenv('AZUREML_MODEL_DIR')
    # the name of the folder in which to look for tensorflow model files
    tf_model_folder = 'model'
    tf_model = tf.saved_model.load(os.path.join(model_root, tf_model_folder, 'saved_model'))


def run(raw_data):
    data = np.array(json.loads(raw_data)['data'], dtype=np.float32).reshape(-1, 28, 28)
    # make prediction
    out = tf_model.serve(data)
    y_hat = np.argmax(out, axis=1)
    return y_hat.tolist()
''',
    '''
from azureml.core.conda_dependencies import CondaDependencies
from azureml.core.environment import Environment

cd = CondaDependencies.create(pip_packages=['azureml-defaults', 'numpy'])
cd.save_to_file(base_directory='./', conda_file_path='myenv.yml')
print(cd.serialize_to_string())
myenv = Environment.from_conda_specification(name="myenv", file_path="myenv.yml")
''',
    '''
from azureml.core.model import InferenceConfig
from azureml.core.webservice import AciWebservice

inference_config = InferenceConfig(entry_script="score.py", environment=myenv)

aciconfig = AciWebservice.deploy_configuration(cpu_cores=1,
                                               memory_gb=1,
                                               tags={'name': 'mnist', 'framework': 'TensorFlow DNN'},
                                               description='Tensorflow DNN on MNIST')
''',
    '''
%%time
from azureml.core.model import Model

service = Model.deploy(workspace=ws,
                       name='tf-mnist-svc',
                       models=[model],
                       inference_config=inference_config,
                       deployment_config=aciconfig)

service.wait_for_deployment(True)
print(service.state)
''',
    "print(service.scoring_uri)",
    '''
import json
import numpy as np
from utils import load_data

X_test = load_data('./data/t10k-images-idx3-ubyte.gz', False) / np.float32(255.0)
y_test = load_data('./data/t10k-labels-idx1-ubyte.gz', True).reshape(-1)

test_samples = json.dumps({"data": X_test[:5].tolist()})
test_samples = bytes(test_samples, encoding='utf8')

# predict using the deployed model
result = service.run(input_data=test_samples)
print("SERVICE ANSWERED:", result, "labels:", y_test[:5].tolist())
''',
    '''
import requests

headers = {'Content-Type': 'application/json'}
resp = requests.post(service.scoring_uri, test_samples, headers=headers)

print("POST to url", service.scoring_uri)
print("HTTP", resp.status_code, "prediction:", resp.text)
''',
    '''
models = ws.models
for name, model in models.items():
    print("Model: {}, ID: {}".format(name, model.id))

webservices = ws.webservices
for name, webservice in webservices.items():
    print("Webservice: {}, scoring URI: {}".format(name, webservice.scoring_uri))
''',
    "service.delete()",
]
