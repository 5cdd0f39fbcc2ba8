"""Gradio-side helpers for app.py: handler functions and explanatory text.

The engine (`gan_core`) never imports from here.
"""
