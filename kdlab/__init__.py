"""kdlab: the shared code behind the knowledge-distillation and interpretability notebooks.

Importing kdlab imports only torch, torchvision and numpy; everything heavier is imported
inside the functions that need it, so `import kdlab` stays fast in every notebook.
"""

__version__ = "0.1.0"
