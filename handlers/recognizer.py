"""TorchServe handler, DAG node 2: payload crops -> plate text readings (crops passed on).

The logic lives in :mod:`thaiplate.serving.stages`; TorchServe instantiates the one class here.
"""

from thaiplate.serving.stages import RecognizerStage


class RecognizerHandler(RecognizerStage):
    pass
