"""Break each decision of the HA agent's core (images/netclient/agent/bgp4mesh_agent/core.py)
once, in a copy, and run its unit tests (tests/test_agent_core.py) on each: every broken
decision must fail a test. Run by hand: .venv/bin/python tests/agent_mutants.py"""
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
SRC = Path(__file__).resolve().parent.parent
MUTANTS = [
 ("flip threshold swapped", "if streak >= (down_after if value.up else up_after):", "if streak >= (up_after if value.up else down_after):"),
 ("flip streak never resets", "streak = value.streak + 1 if seen != value.up else 0", "streak = value.streak + 1"),
 ("mesh ignores the other gateways", "ok = any(seen.probes.get(p, False) for p in (*peers, *others(router)))", "ok = any(seen.probes.get(p, False) for p in peers)"),
 ("mesh ignores the peers", "ok = any(seen.probes.get(p, False) for p in (*peers, *others(router)))", "ok = any(seen.probes.get(p, False) for p in others(router))"),
 ("available ignores upstream", "available = mesh.up and seen.upstream and state.port.up and not seen.maintenance", "available = mesh.up and state.port.up and not seen.maintenance"),
 ("available ignores maintenance", "available = mesh.up and seen.upstream and state.port.up and not seen.maintenance", "available = mesh.up and seen.upstream and state.port.up"),
 ("available ignores own port", "available = mesh.up and seen.upstream and state.port.up and not seen.maintenance", "available = mesh.up and seen.upstream and not seen.maintenance"),
 ("announce ignores maintenance", 'want = "normal" if mesh.up and not seen.maintenance else "drained"', 'want = "normal" if mesh.up else "drained"'),
 ("announce ignores mesh", 'want = "normal" if mesh.up and not seen.maintenance else "drained"', 'want = "normal" if not seen.maintenance else "drained"'),
 ("refusal never re-checked", "elif rounds % SLOW_ROUNDS == 0:", "elif False:"),
 ("refusal not set on change", "if state.refused != (not available):", "if False:"),
 ("own port debounced like the mesh", "port = flip(state.port, seen.probes.get(router.self_ip, False), probe.up_after, CLOSED_AFTER)", "port = flip(state.port, seen.probes.get(router.self_ip, False), probe.up_after, probe.down_after)"),
 ("restart clock runs without mesh", "closed_since = seen.now if port.up or not state.mesh.up else state.closed_since", "closed_since = seen.now if port.up else state.closed_since"),
 ("restart clock never starts", "closed_since = seen.now if port.up or not state.mesh.up else state.closed_since", "closed_since = seen.now"),
 ("backoff never resets", "restart_after = RESTART_AFTER_S if port.up else state.restart_after", "restart_after = state.restart_after"),
 ("backoff unbounded", "min(restart_after * 2, RESTART_MAX_S)", "restart_after * 2"),
 ("no backoff", "min(restart_after * 2, RESTART_MAX_S)", "restart_after"),
 ("self active before settled", "            if settled:\n                return g.mesh", "            if True:\n                return g.mesh"),
 ("no answering-now gateway while unsettled", "elif gateways[g.mesh].up or (not settled and probes.get(g.mesh, False)):", "elif gateways[g.mesh].up:"),
 ("no hand-over without mesh", "return rest[0] if rest and not mesh else \"\"", "return \"\""),
 ("forward to self's ibgp", "via = next((g.ibgp for g in router.gateways if g.mesh == active and active != router.self_ip), \"\")", "via = next((g.ibgp for g in router.gateways if g.mesh == active), \"\")"),
 ("failed announce believed", "if ok and isinstance(action, Announce):", "if isinstance(action, Announce):"),
 ("failed forwarding believed", "if ok and isinstance(action, ForwardTo):", "if isinstance(action, ForwardTo):"),
 ("no clear at start", "actions: list[Action] = [ClearRules(router.mesh_range)]", "actions: list[Action] = []"),
 ("no rules at start", "        actions.append(InstallRules(router.mesh_range, own))", "        pass"),
 ("no refusal at start", 'actions += [Refuse(True, "starting"), Log(', 'actions += [Log('),
 ("port open without own address: closed", "port=Flip(up=not router.self_ip)", "port=Flip(up=False)"),
 ("peers only every slow rounds", "return state.rounds % SLOW_ROUNDS == 0 or not state.peers", "return state.rounds % SLOW_ROUNDS == 0"),
 ("peers never refreshed", "return state.rounds % SLOW_ROUNDS == 0 or not state.peers", "return not state.peers"),
 ("peers unbounded", "        if len(peers) >= MAX_PEERS:\n            break", "        pass"),
 ("peers include gateways", "skip = {router.self_ip, *(g.mesh for g in router.gateways)}", "skip = {router.self_ip}"),
 ("node takes the last gateway up", 'active = next((gw for gw in node.gateways if gateways[gw].up), "")', 'active = next((gw for gw in reversed(node.gateways) if gateways[gw].up), "")'),
 ("node moves no ranges", "    if missing:\n        actions +=", "    if False:\n        actions +="),
 ("node adds no fallback route", "        if r not in routed:", "        if False:"),
 ("node fixes without a peer", "    if held is None:\n        return []", "    if held is None:\n        held = ()"),
 ("node debounces with up_after both ways", "gateways[gw] = flip(state.gateways[gw], seen.probes.get(gw, False), probe.up_after, probe.down_after)", "gateways[gw] = flip(state.gateways[gw], seen.probes.get(gw, False), probe.up_after, probe.up_after)"),
 ("internet client ignores internet6", "    if node.internet6 and not seen.default6 and", "    if not seen.default6 and"),
 ("internet client re-adds a held default", "    if node.internet6 and not seen.default6 and", "    if node.internet6 and"),
 ("internet client adds without a ::/0 peer", 'and any("::/0" in ips for _key, ips in seen.allowed_ips):', "and True:"),
]
work = Path(tempfile.mkdtemp(prefix="agent-mutants-"))
survived = []
for name, old, new in MUTANTS:
    shutil.rmtree(work, ignore_errors=True)
    (work / "tests").mkdir(parents=True)
    shutil.copytree(SRC / "images/netclient/agent", work / "images/netclient/agent")
    shutil.copy(SRC / "tests/test_agent_core.py", work / "tests")
    core = work / "images/netclient/agent/bgp4mesh_agent/core.py"
    text = core.read_text()
    assert text.count(old) == 1, (name, text.count(old))
    core.write_text(text.replace(old, new))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "tests/test_agent_core.py"], cwd=work, capture_output=True, text=True)
    failed = [l for l in proc.stdout.splitlines() if l.startswith("FAILED")]
    print(f"{'caught' if proc.returncode else 'SURVIVED':9} {name}: {failed[0].split('::')[1].split(' ')[0] if failed else ''}")
    if not proc.returncode:
        survived.append(name)
print(f"{len(MUTANTS) - len(survived)} of {len(MUTANTS)} broken decisions caught; survived: {survived}")
