package main

import (
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
)

// Tokens of the mapped upstream resources (pulumi-docker 5.2.0's). Everything else the upstream
// has (docker_service, docker_config, docker_secret, docker_plugin, docker_registry_image,
// docker_tag, docker_buildx_builder, every data source) is left unmapped; docker:index/image:Image
// is pulumi-docker's own code, not an upstream resource: not served (images build through
// RemoteImage's build block).
const (
	containerTok   = "docker:index/container:Container"
	networkTok     = "docker:index/network:Network"
	volumeTok      = "docker:index/volume:Volume"
	remoteImageTok = "docker:index/remoteImage:RemoteImage"
)

func name(n string) *tfbridge.SchemaInfo { return &tfbridge.SchemaInfo{Name: n} }

func elem(fields map[string]*tfbridge.SchemaInfo) *tfbridge.SchemaInfo {
	return &tfbridge.SchemaInfo{Elem: &tfbridge.SchemaInfo{Fields: fields}}
}

// resourceInfo: tokens plus the property names where pulumi-docker's differ from the names the
// bridge derives (camelCase, lists pluralized). toolchain/tests/test_docker_names.py compares the
// result with the pulumi_docker Python SDK.
func resourceInfo() map[string]*tfbridge.ResourceInfo {
	return map[string]*tfbridge.ResourceInfo{
		"docker_container": {
			Tok: containerTok,
			Fields: map[string]*tfbridge.SchemaInfo{
				// optional in pulumi-docker: a name is generated from the resource name
				"name":    tfbridge.AutoName("name", 255, "-"),
				"command": name("command"),
				// pulumi-docker keeps the Terraform name unpluralized
				"networks_advanced": name("networksAdvanced"),
			},
		},
		"docker_network": {
			Tok: networkTok,
			Fields: map[string]*tfbridge.SchemaInfo{
				"name": tfbridge.AutoName("name", 255, "-"),
			},
		},
		"docker_volume": {
			Tok: volumeTok,
		},
		"docker_image": {
			Tok: remoteImageTok,
		},
	}
}

// configInfo: provider configuration names (docker:host, docker:registryAuth, ...).
func configInfo() map[string]*tfbridge.SchemaInfo {
	return map[string]*tfbridge.SchemaInfo{
		"registry_auth": name("registryAuth"),
	}
}
