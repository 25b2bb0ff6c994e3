"""bgp4mesh Pulumi program: validate the stack config, then declare the stack."""

import pulumi

from bgp4mesh import ssh
from bgp4mesh.neighbours import neighbour_warning
from bgp4mesh.problems import ConfigError
from bgp4mesh.stack import plan_stack, raw_from_pulumi
from components import lab

try:
    raw, secret_keys = raw_from_pulumi()
    plan = plan_stack(raw, secret_keys)
except ConfigError as exc:
    # Nothing is declared: the message names the key and the rule, never a secret.
    raise pulumi.RunError(str(exc)) from None

# Remote hosts answer with their pinned keys, or nothing is declared: a wrong host fails
# preview and up in seconds, by name, instead of deep inside a provider.
problems = ssh.preflight(plan.model.hosts)
if problems:
    raise pulumi.RunError("cannot reach every host:\n  " + "\n  ".join(problems))

crowded = neighbour_warning(plan)
if crowded:
    pulumi.log.warn(crowded.removeprefix("WARNING: "))

for key, value in lab.build(plan).items():
    pulumi.export(key, value)
