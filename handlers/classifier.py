"""TorchServe handler, DAG node 3: payload crops -> provinces -> final JSON (the pipeline schema).

The logic lives in :mod:`thaiplate.serving.stages`; TorchServe instantiates the one class here.
"""

from thaiplate.serving.stages import ClassifierStage


class ClassifierHandler(ClassifierStage):
    pass
