"""GAN Classroom engine: data, models, losses, a live-tunable training step, a
background runner, lock-guarded telemetry, checkpoints and a headless CLI.

It imports neither Gradio, plotly nor Pillow (tests/test_layering.py checks); the
page lives in `classroom/` and reads the immutable snapshots published here.
Importing it has no side effects.
"""

__version__ = "0.1.0"
