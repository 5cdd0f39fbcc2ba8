"""The classroom: everything a page needs on top of the engine.

Sessions and admission (the server side), plotly figures, GIF rendering, symptom
alerts, lesson presets and their texts, and the Gradio handlers. It imports
`gan_core`; `gan_core` never imports from here (tests/test_layering.py).
"""
