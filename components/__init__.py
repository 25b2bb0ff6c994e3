"""Pulumi ComponentResources of bgp4mesh, each composing Docker containers and commands."""
