"""Networks as functions under study: the presets (the tutorial's two networks) and the
cross-checks every network run carries (backward vs autograd.grad, forward mode, the
gradient penalty)."""
