"""The cells of Azure ML's distributed-tensorflow-with-horovod notebook: an MPI job of node_count=2 nodes with
one process each on an AmlCompute cluster (here two "nodes" on this machine), training data-parallel."""
from .common import SETUP

CELLS = SETUP + [
    '''
import os
import shutil

project_folder = './tf-distr-hvd'
os.makedirs(project_folder, exist_ok=True)

shutil.copy('mwms_mnist.py', project_folder)
shutil.copy('mnist_common.py', project_folder)
''',
    '''
from azureml.core import Experiment

experiment_name = 'tf-distr-hvd'
experiment = Experiment(ws, name=experiment_name)
''',
    '''
from azureml.core.runconfig import MpiConfiguration
from azureml.train.dnn import TensorFlow

script_params = {
    '--data-folder': dataset.as_named_input('mnist').as_mount(),
    '--epochs': 1,
    '--max-train-samples': 500,
    '--first-layer-neurons': 32,
    '--second-layer-neurons': 16,
}

estimator = TensorFlow(source_directory=project_folder,
                       compute_target=compute_target,
                       script_params=script_params,
                       entry_script='mwms_mnist.py',
                       node_count=2,
                       process_count_per_node=1,
                       distributed_training=MpiConfiguration(),
                       pip_packages=['azureml-dataprep[pandas,fuse]'])
''',
    '''
run = experiment.submit(estimator)
print(run)
''',
    '''
from azureml.widgets import RunDetails

RunDetails(run).show()
''',
    "run.wait_for_completion(show_output=True)",
    '''
print("RUN STATUS:", run.get_status())
m0, m1 = run.get_metrics(rank=0), run.get_metrics(rank=1)
print("RANKS:", 2 if m0["weights_checksum"] == m1["weights_checksum"] else "weights differ")
''',
    '''
import re

run.download_file(name='logs/driver.log', output_file_path='driver.log')
with open('driver.log') as fh:
    print("NODES:", sorted(set(re.findall(r'node-[0-9]+', fh.read()))))
''',
]
