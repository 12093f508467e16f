"""Video question answering on ApproxBit: templated questions about the synthetic action clips,
answered from the backbone's last feature map, on the edge (edge-only) or from what the server
rebuilt from the binary codes."""
