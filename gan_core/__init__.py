"""GAN Classroom's engine: data, models, losses, a live-tunable training step, evaluation,
lock-guarded telemetry, checkpoints and a headless CLI (`python -m gan_core.train`).

The serving layer that trains runs in the background lives in `gan_core.serve`; the page in
`classroom/`. This package imports neither, nor Gradio, plotly or Pillow (tests/test_layering.py).
Importing it has no side effects.
"""

__version__ = "0.1.0"
