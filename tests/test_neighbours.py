"""A lab's need for neighbour-table entries against this machine's cap (bgp4mesh/neighbours.py)."""

from __future__ import annotations

from bench.scale import stack_with_nodes
from bgp4mesh.neighbours import lab_neighbours, neighbour_warning
from bgp4mesh.stack import plan_stack, raw_from_file


def lab_with_nodes(n: int):
    """The dev stack with `n` unpinned nodes on a /20 (bench/scale.py's)."""
    return plan_stack(stack_with_nodes(n))


def cap(tmp_path, value: str):
    path = tmp_path / "gc_thresh3"
    path.write_text(value)
    return path


def test_every_container_on_the_underlay_counts_against_every_other():
    dev = plan_stack(raw_from_file("dev")[0])
    on_underlay = len(dev.underlay.routers) + len(dev.underlay.nodes) + len(dev.underlay.netmaker) + 1  # + Prometheus
    assert on_underlay >= 4 and lab_neighbours(dev) == on_underlay ** 2
    assert lab_neighbours(lab_with_nodes(40)) - lab_neighbours(lab_with_nodes(39)) > 80  # grows as n squared
    assert lab_neighbours(plan_stack(raw_from_file("staging")[0])) == 0  # real hosts: no shared bridge here


def test_a_lab_over_the_cap_is_warned_about_naming_the_sysctl(tmp_path):
    big = lab_with_nodes(40)  # the size that overflowed Linux's default 1024 entries
    warning = neighbour_warning(big, cap(tmp_path, "1024\n"))
    assert warning.startswith(f"WARNING: this lab keeps about {lab_neighbours(big)} neighbour (ARP) entries")
    assert "net.ipv4.neigh.default.gc_thresh3 = 1024" in warning and "./scripts/bootstrap" in warning
    assert neighbour_warning(big, cap(tmp_path, "65536")) is None
    assert neighbour_warning(lab_with_nodes(2), cap(tmp_path, "1024")) is None  # dev-sized labs fit the default


def test_no_warning_when_the_cap_cannot_be_read(tmp_path):
    big = lab_with_nodes(40)
    assert neighbour_warning(big, tmp_path / "absent") is None
    assert neighbour_warning(big, cap(tmp_path, "garbage")) is None
