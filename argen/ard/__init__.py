"""Adaptive reinforcement diffusion (paper sec. 3.1, 3.3): the generation engine and its guidance curve."""
