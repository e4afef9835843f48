"""Annotation-cost harness for active learning in object detection.

The rooms, from the bottom up; each subpackage's own docstring says what it holds and what it
may import, and tests/test_imports.py holds every room to that:

    core/         the types that flow through a cycle (boxes, labels, predictions, queries),
                  errors, atomic files, the plug-in registries, progress bars and time left
    datasets/     dataset readers by spec (digits, coco:, voc:, yolo:) and the embedded digits
    backends/     the detectors (Faster R-CNN, RetinaNet, YOLO) and their pretrained weights
    campaign/     one run, one strategy x one seed: its config, the loop, the budget, label
                  updates, evaluation, and its folder on disk
    experiments/  many runs: the paper's presets, executors (processes, Ray), compare and its
                  summary, ssod-check, the kill test
    human/        a person as the annotator: importing and pulling answers, and their commands
    cli.py        the command line (`python -m harness`), with capability_table.py beside it:
                  the strategy x backend table that `list --capabilities` prints

The plug-ins live beside this package, one folder per kind (strategies/, oracles/,
cost_models/), and reports/ draws figures from run folders. The flat paths of the modules a
plug-in may import from before issue #25 (harness.registry, .queries, .labels, .predictions,
.boxes, .errors, .io, .config, .loop, .pretrain) still work and warn: each is a few lines here
that hand out the module from its new home.
"""

__version__ = "0.1.0"
