"""ARGen: affect-reinforced generative augmentation for dynamic facial expression recognition.

The package holds the logic; the scripts in ``stages/`` only wire ``params.yaml`` and paths to it.
"""

__version__ = "0.1.0"
