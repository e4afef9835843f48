"""Many runs at once, and what is concluded from them: presets (the paper's settings, and what
each figure or table needs), executors (where a grid's runs execute: this process, worker
processes, Ray), compare (a grid of strategies x seeds and its summary, `python -m harness
compare`), ssod_check (the check that chooses the semi-supervised recipe) and killtest (kill a
run at random moments, resume it, and check it ends as an uninterrupted one). A new executor,
preset, sweep or check made of whole runs belongs here. May import: campaign and what it may
import, and reports (summaries, figures); never human or the command line.
"""
