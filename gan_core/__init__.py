"""GAN Classroom engine: data, models, losses, a live-tunable training step, a
background runner and lock-guarded telemetry.

This package knows nothing about Gradio or any UI; `app.py` reads the immutable
snapshots it publishes. Importing it has no side effects.
"""

__version__ = "0.1.0"
