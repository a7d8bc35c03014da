"""The cells of Azure ML's distributed-tensorflow-with-parameter-server notebook: a TensorflowConfiguration job
(ps tasks, workers and a chief, each with its TF_CONFIG) trained with ParameterServerStrategy."""
from .common import SETUP

CELLS = SETUP + [
    '''
import os
import shutil

project_folder = './tf-distr-ps'
os.makedirs(project_folder, exist_ok=True)

shutil.copy('ps_mnist.py', project_folder)
shutil.copy('mnist_common.py', project_folder)
''',
    '''
from azureml.core import Experiment

experiment_name = 'tf-distr-ps'
experiment = Experiment(ws, name=experiment_name)
''',
    '''
from azureml.core.runconfig import TensorflowConfiguration
from azureml.train.dnn import TensorFlow

script_params = {
    '--data-folder': dataset.as_named_input('mnist').as_mount(),
    '--epochs': 1,
    '--max-train-samples': 500,
    '--first-layer-neurons': 32,
    '--second-layer-neurons': 16,
}

distributed_training = TensorflowConfiguration()
distributed_training.worker_count = 2

estimator = TensorFlow(source_directory=project_folder,
                       compute_target=compute_target,
                       script_params=script_params,
                       entry_script='ps_mnist.py',
                       node_count=2,
                       process_count_per_node=1,
                       distributed_training=distributed_training)
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
print("TASKS:", sorted(os.path.basename(f)[:-4] for f in run.get_file_names()
                       if f.startswith('logs/') and f.endswith('.log') and '_' in f))
print(run.get_metrics()['final_test_accuracy'])
''',
]
