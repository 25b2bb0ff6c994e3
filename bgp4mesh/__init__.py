"""bgp4mesh: run your own AS - a BIRD border router announcing your block, a Netmaker
WireGuard mesh on that block, and the border router as the mesh's egress gateway."""
