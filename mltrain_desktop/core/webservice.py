"""The seed's ``azureml.core.webservice``: Webservice and LocalWebservice (see mltrain_desktop.serving)."""
from ..serving.webservice import InferenceConfig, LocalWebservice, Webservice, WebserviceException

__all__ = ["Webservice", "LocalWebservice", "InferenceConfig", "WebserviceException"]
