"""Paper step 4 (sec. 3.3, eq. 14-17): the reward components (speed, quality, face, expression, AU fidelity,
human preference) and the reward table, every (pair, action, seed) generated short and audited."""
