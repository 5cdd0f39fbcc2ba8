"""The serving layer: runs trained in the background and the handles that steer them.

    handle.py     `RunHandle`, the one protocol every run handle implements, and the behaviour
                  they share (commands between two steps, rewind, save, slow motion, NaN pauses)
    runner.py     `Runner`: a run on a training thread of its own (digits, or anything alone)
    cohort.py     many same-shape 2-D runs stacked into one batched step
    trainer.py    `Trainer`: a class's trainer threads stepping cohorts; `CohortRunner`, a run in one
    processes.py  `TrainerProcesses`: trainer threads in child processes; `RemoteRun`, the handle there

It imports the engine (`gan_core`) and nothing of the page; `classroom` imports it.
"""
