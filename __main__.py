"""bgp4mesh Pulumi program: validate the stack config, then declare the stack."""

import pulumi

from bgp4mesh.config import ConfigError
from bgp4mesh.stack import raw_from_pulumi, validate
from components import lab

try:
    config = validate(raw_from_pulumi())
except ConfigError as exc:
    # Nothing is declared: the message names the key, the value and the rule.
    raise pulumi.RunError(str(exc)) from None

for key, value in lab.build(config).items():
    pulumi.export(key, value)
