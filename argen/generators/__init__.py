"""Paper step 3 (sec. 3.1, 3.3, eq. 12): the video generators that turn (identity frame x0, prompt y, action u)
into a clip: the landmark-motion diffusion model, the AU-driven warp, TI2V-Zero on ModelScope T2V, the
renderer they share (with its own mean face), the guidance curve, the generator interface and factory,
and the preview contact sheet."""
