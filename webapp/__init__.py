"""The web page of app.py: a Gradio front over the `inference` video pipeline."""
