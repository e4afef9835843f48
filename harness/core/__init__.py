"""The types that flow through a cycle, and the helpers every other room uses: boxes (float32
`xyxy` helpers), labels (the pool's boxes with their provenance), predictions (a pool's
detections, columnar), queries (what is asked and what the annotator did), errors (the
harness's errors and warnings), io (atomic writes, file locks), registry (one registry per
plug-in kind, with its entry-point group), and progress, eta and device (progress bars, time
left, the run's device as a torch device), which sit here because the backends' training loops
use them too. A new type that strategies,
oracles, cost models or backends hand each other belongs here. May import: nothing else of the
project (a registry loads its kind's built-in package by name on the first lookup, which is no
import); every other room and plug-in may import it.
"""
