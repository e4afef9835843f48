"""One campaign, one strategy x one seed, from a resolved config to a run folder: config (the
run's options: defaults, file, flags), loop (`Campaign`: fit, evaluate, predict, ask, update
the labels, commit, resume), budget (what a cycle may spend and which questions it buys),
label_update and weak_labels (answers, pseudo boxes and clicks into training labels with
provenance), evaluation (AP) and pseudo_quality (how good the confident pseudo boxes are),
cycle0_predictions (the shared cycle-0 model's predictions, made once), run_store and
environment (the run folder, written so that a kill loses at most the cycle in flight, and the
library versions it computed with), pending (a cycle waiting for a person's answers). A change
to what one run does, records or writes belongs here. May import: core, datasets, backends and
the plug-in packages' contracts (strategies.base, oracles.base, cost_models); never
experiments, human or the command line, which call it.
"""
