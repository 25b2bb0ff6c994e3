"""Stand-in resource-provider plugins for pulumi-command, pulumi-random and pulumi-tls
(the real plugins cannot be built or downloaded on these machines). See toolchain/README.md."""

PROVIDERS = {
    "command": ("standin.command", "CommandProvider"),
    "random": ("standin.random", "RandomProvider"),
    "tls": ("standin.tls", "TlsProvider"),
}
