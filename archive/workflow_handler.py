"""Workflow-level Python functions for thaiplate.war: intentionally none.

torch-workflow-archiver 0.2.15 requires a ``--handler`` file. Every node of ``archive/workflow.yaml``
is a model archive (detector, recognizer, classifier), so no function node is defined here: a
function node would be one more Python worker (and one more hop exposed to the DagExecutor race)
for work the model handlers already do.
"""
