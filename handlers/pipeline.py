"""TorchServe handler, all stages in one worker: request -> ``Pipeline.run`` per image -> JSON.

The logic lives in :mod:`thaiplate.serving.stages`; TorchServe instantiates the one class here.
"""

from thaiplate.serving.stages import PipelineStage


class PipelineHandler(PipelineStage):
    pass
