"""Split-able video backbones: ``edge(x, o)`` runs up to offload point o, ``server(h, o)`` the
rest. Offload point o = number of blocks run on the edge."""
