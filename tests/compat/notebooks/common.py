"""Cells every companion notebook starts with: the extension, the SDK version, telemetry, the workspace,
the AmlCompute cluster and the registered MNIST dataset (the sample subset, in the notebook's data/)."""

SETUP = [
    "%load_ext mltrain_desktop",
    '''
import azureml.core

print("SDK version:", azureml.core.VERSION)
''',
    '''
from azureml.telemetry import set_diagnostics_collection

set_diagnostics_collection(send_diagnostics=True)
''',
    '''
from azureml.core.workspace import Workspace

ws = Workspace.from_config()
print('Workspace name: ' + ws.name,
      'Azure region: ' + ws.location,
      'Subscription id: ' + ws.subscription_id,
      'Resource group: ' + ws.resource_group, sep='\\n')
''',
    '''
from azureml.core.compute import ComputeTarget, AmlCompute
from azureml.core.compute_target import ComputeTargetException

# choose a name for your cluster
cluster_name = "gpu-cluster"

try:
    compute_target = ComputeTarget(workspace=ws, name=cluster_name)
    print('Found existing compute target')
except ComputeTargetException:
    print('Creating a new compute target...')
    compute_config = AmlCompute.provisioning_configuration(vm_size='STANDARD_NC6',
                                                           max_nodes=2)

    # create the cluster
    compute_target = ComputeTarget.create(ws, cluster_name, compute_config)

    compute_target.wait_for_completion(show_output=True)

# use get_status() to get a detailed status for the current cluster.
print(compute_target.get_status().serialize())
''',
    '''
import os
from azureml.core import Dataset

web_paths = [os.path.abspath(os.path.join('data', f)) for f in (
    'train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz',
    't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz')]
dataset = Dataset.File.from_files(path=web_paths)
dataset = dataset.register(workspace=ws, name='mnist-dataset', description='MNIST-format training and test data',
                           create_new_version=True)
dataset.to_path()
''',
]
