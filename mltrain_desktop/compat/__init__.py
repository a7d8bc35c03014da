"""The azureml compatibility layer: Azure ML SDK v1 names mapped onto this package, only when asked."""
