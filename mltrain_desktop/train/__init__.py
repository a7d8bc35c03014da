"""The seed's ``azureml.train`` namespace: estimators."""
