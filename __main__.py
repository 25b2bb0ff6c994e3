"""bgp4mesh Pulumi program: validate the stack config, then declare the stack."""

import pulumi

from bgp4mesh import ssh
from bgp4mesh.config import ConfigError
from bgp4mesh.stack import raw_from_pulumi, validate
from components import lab

try:
    raw, secret_keys = raw_from_pulumi()
    config = validate(raw, secret_keys)
except ConfigError as exc:
    # Nothing is declared: the message names the key and the rule, never a secret.
    raise pulumi.RunError(str(exc)) from None

# Remote hosts answer with their pinned keys, or nothing is declared: a wrong host fails
# preview and up in seconds, by name, instead of deep inside a provider.
problems = ssh.preflight(config.hosts)
if problems:
    raise pulumi.RunError("cannot reach every host:\n  " + "\n  ".join(problems))

for key, value in lab.build(config, frozenset(secret_keys)).items():
    pulumi.export(key, value)
