"""Paper step 5 (sec. 3.3, eq. 13 and 18-21; Algorithm 1): the adaptive policy, its state encoders, its
REINFORCE training on the reward table, the held-out comparison with fixed actions, and choosing the
actions that generate the augmentation set D3 (Algorithm 1, stage 2)."""
