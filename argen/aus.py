"""Action Unit names shared by every AU backend, the demo generator and the knowledge base.

OpenFace 2.x estimates intensity (0-5) for these 17 AUs, in this column order.
"""

from __future__ import annotations

#: AU numbers with an OpenFace intensity estimate, in OpenFace's column order.
INTENSITY_AUS: tuple[int, ...] = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 45)

#: OpenFace's intensity column names: ``AU01_r`` ... ``AU45_r``.
INTENSITY_COLUMNS: tuple[str, ...] = tuple(f"AU{au:02d}_r" for au in INTENSITY_AUS)

#: OpenFace's intensity scale.
MAX_INTENSITY: float = 5.0
