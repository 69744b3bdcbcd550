"""TorchServe handler, DAG node 1: request (image bytes) -> plate boxes + rectified crops (payload).

The logic lives in :mod:`thaiplate.serving.stages` (installed in the serving venv); TorchServe
instantiates the one class defined here.
"""

from thaiplate.serving.stages import DetectorStage


class DetectorHandler(DetectorStage):
    pass
