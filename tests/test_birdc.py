"""birdc's `show protocols` parsed whatever time format BIRD prints the Since column in (the
column itself kept whole: live tests and benches time sessions by it)."""

from __future__ import annotations

import subprocess

import pytest

from bgp4mesh.birdc import Protocol, Target, protocols

HEAD = "BIRD 2.0.12 ready.\nName       Proto      Table      State  Since         Info\n"


class Canned(Target):
    """A Target whose birdc prints `text` (no container)."""

    def __init__(self, text: str):
        super().__init__("canned")
        object.__setattr__(self, "text", text)

    def run(self, *cmd: str, timeout: float = 20, input=None) -> subprocess.CompletedProcess:
        return subprocess.CompletedProcess(cmd, 0, self.text, "")


@pytest.mark.parametrize("since", ["04:00:00.000", "2026-12-05", "2026-12-06 20:56:30", "2026-12-06 20:56:30.123"],
                         ids=["default", "default-older-than-20h", "iso-long", "iso-long-ms"])
def test_state_and_info_whatever_the_time_format(since):
    text = HEAD + f"device1    Device     ---        up     {since}  \nisp_v4     BGP        ---        start  {since}  Active        Socket: Connection refused\n" \
        f"peer_b     BGP        ---        up     {since}  Established   \n"
    assert protocols(Canned(text)) == {
        "device1": Protocol("device1", "Device", "up", "", since),
        "isp_v4": Protocol("isp_v4", "BGP", "start", "Active        Socket: Connection refused", since),
        "peer_b": Protocol("peer_b", "BGP", "up", "Established", since),
    }
