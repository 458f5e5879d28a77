"""The Gradio interface. The only package that imports gradio; it talks to the engine only."""
