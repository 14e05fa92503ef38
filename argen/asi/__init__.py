"""Affective semantic injection (paper sec. 3.2): AU knowledge base, retrieval, prompts, hallucination check.

Modules: :mod:`~argen.asi.facs` (the packaged FACS table), :mod:`~argen.asi.kb` (K, eq. 7),
:mod:`~argen.asi.retrieval` (eq. 8), :mod:`~argen.asi.template` and :mod:`~argen.asi.vlm` (the prompt
backends), :mod:`~argen.asi.verify` (supp. G), :mod:`~argen.asi.prompts` (modes and repair).
"""
