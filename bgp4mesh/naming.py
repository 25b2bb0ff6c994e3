"""Generated identifiers outside BIRD: one function per kind, used by the components
that create the objects and by everything that looks them up (verify, tests, bench)."""

STACK_LABEL = "bgp4mesh.stack"


def docker_name(stack: str, name: str) -> str:
    """Docker container, network and volume name: unique per stack on a shared engine."""
    return f"bgp4mesh-{stack}-{name}"
