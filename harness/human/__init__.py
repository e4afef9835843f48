"""A person as the annotator, the harness's side of it: answers (read a Label Studio export or
pull it from the server, check it against the questions asked, and close the waiting cycle
through the loop's own path) and commands (`answers import|pull`, `costs calibrate`, and the
options `run --oracle human` adds). The rest of the round trip lives with its kind: the oracle
that asks (oracles/human.py), the Label Studio formats and HTTP calls (oracles/label_studio*),
the waiting cycle's state (campaign/pending.py, which the loop writes), price calibration
(cost_models/calibrate.py). A new way for answers to come back belongs here. May import:
campaign and what it may import; never experiments or the command line.
"""
