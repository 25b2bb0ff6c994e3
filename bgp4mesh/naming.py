"""Generated identifiers: one function per kind, used by what creates the objects (the
plan, the components, the templates) and by everything that looks them up (verify, tests,
bench). BIRD names: no BIRD symbol is a raw user name (BIRD 2.0.12 rejects hundreds of
its keywords as protocol names, quoted or not)."""

STACK_LABEL = "bgp4mesh.stack"


def docker_name(stack: str, name: str) -> str:
    """Docker container, network and volume name: unique per stack on a shared engine."""
    return f"bgp4mesh-{stack}-{name}"


def bird_symbol(kind: str, name: str) -> str:
    """The BIRD symbol of a user-named object: `<kind>_<name>` with '-' as '_'.

    Names are a-z, 0-9 and '-' (config.Name), so the mapping is one-to-one, and no
    BIRD keyword starts with one of our kinds (`peer_`, `import_v4_`, `import_v6_`),
    so no user name can collide with a keyword."""
    return f"{kind}_{name.replace('-', '_')}"


def bird_protocol(name: str, version: int = 4) -> str:
    """The BGP protocol's name in BIRD (and birdc) for an upstream on the border, or for a
    border router on its mock ISP: `peer_<name>` for the IPv4 session, e.g. 'isp-a' ->
    'peer_isp_a', and `peer6_<name>` for the IPv6 one (one session per family)."""
    return bird_symbol("peer" if version == 4 else f"peer{version}", name)


def roa_table(version: int) -> str:
    """The border's ROA table of IP version 4 or 6 (what `roa_check` and verify ask)."""
    return f"roa_v{version}"


def bird_rpki(index: int) -> str:
    """The RPKI protocol's name in BIRD for rpki.caches[index]: `rpki_cache_<index + 1>`."""
    return bird_symbol("rpki", f"cache-{index + 1}")
