// pulumi-resource-docker: the kreuzwerker Terraform docker provider bridged to Pulumi with
// pulumi-terraform-bridge, standing in for pulumi-docker (whose own module the Go proxy refuses).
// pulumi-docker's own docker:index/image:Image is not in the upstream and not served: images are
// built through RemoteImage's build block.
//
// It is compiled inside a writable copy of the upstream module (toolchain/docker-provider/prepare
// puts this package at cmd/pulumi-resource-docker), because the upstream's provider package is
// internal. Resource tokens and property names are pulumi-docker 5.2.0's (see names.go); the
// plugin reports version 5.2.0, the version the pulumi_docker Python SDK asks the engine for.
//
//	pulumi-resource-docker ENGINE_ADDRESS     serve (as the engine runs it)
//	pulumi-resource-docker -version           print the version
//	pulumi-resource-docker -dump-names        print the Pulumi property tree of the mapped resources
//	                                          as JSON (used by toolchain/tests to compare with the SDK)
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/pulumi/pulumi/pkg/v3/resource/provider"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/cmdutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"

	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	shim "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim"
	shimv2 "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim/sdk-v2"

	upstream "github.com/terraform-providers/terraform-provider-docker/internal/provider"
)

// set with -ldflags "-X main.version=..."
var version = "5.2.0"

func providerInfo() tfbridge.ProviderInfo {
	p := shimv2.NewProvider(upstream.New(version)())
	return tfbridge.ProviderInfo{
		P:              p,
		Name:           "docker",
		Version:        version,
		Description:    "bgp4mesh stand-in for pulumi-docker: kreuzwerker/terraform-provider-docker via pulumi-terraform-bridge",
		License:        "Apache-2.0",
		Repository:     "https://github.com/pulumi/pulumi-docker",
		GitHubOrg:      "kreuzwerker",
		Config:         configInfo(),
		Resources:      resourceInfo(),
		DataSources:    map[string]*tfbridge.DataSourceInfo{},
		IgnoreMappings: ignoredMappings(p),
	}
}

// ignoredMappings: every upstream resource and data source that is not mapped to a token.
func ignoredMappings(p shim.Provider) []string {
	mapped := resourceInfo()
	var out []string
	p.ResourcesMap().Range(func(key string, _ shim.Resource) bool {
		if _, ok := mapped[key]; !ok {
			out = append(out, key)
		}
		return true
	})
	p.DataSourcesMap().Range(func(key string, _ shim.Resource) bool {
		out = append(out, key)
		return true
	})
	return out
}

func main() {
	for _, a := range os.Args[1:] {
		if a == "-dump-names" || a == "--dump-names" {
			info := providerInfo()
			if err := json.NewEncoder(os.Stdout).Encode(dumpNames(info)); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			return
		}
	}
	for _, a := range os.Args[1:] {
		if a == "-version" || a == "--version" {
			fmt.Println(version)
			return
		}
	}
	// tfbridge.Main, spelled out so the plugin reports the version given above
	ctx := context.Background()
	info := providerInfo()
	info.P.InitLogging(ctx)
	err := provider.Main("docker", func(host *provider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		return tfbridge.NewProvider(ctx, host, "docker", version, info.P, info, nil), nil
	})
	if err != nil {
		cmdutil.ExitError(err.Error())
	}
}

// node is one property in the dumped tree.
type node struct {
	TF     string           `json:"tf"`
	List   bool             `json:"list,omitempty"` // array-shaped in Pulumi (not flattened)
	Fields map[string]*node `json:"fields,omitempty"`
}

func dumpNames(info tfbridge.ProviderInfo) map[string]map[string]*node {
	out := map[string]map[string]*node{}
	out["pulumi:providers:docker"] = walk(info.P.Schema(), info.Config)
	for tfName, ri := range info.Resources {
		res, ok := info.P.ResourcesMap().GetOk(tfName)
		if !ok {
			out[ri.Tok.String()] = map[string]*node{"<missing upstream resource " + tfName + ">": nil}
			continue
		}
		out[ri.Tok.String()] = walk(res.Schema(), ri.Fields)
	}
	return out
}

func walk(sm shim.SchemaMap, infos map[string]*tfbridge.SchemaInfo) map[string]*node {
	fields := map[string]*node{}
	sm.Range(func(key string, s shim.Schema) bool {
		name := tfbridge.TerraformToPulumiNameV2(key, sm, infos)
		n := &node{TF: key}
		var info *tfbridge.SchemaInfo
		if infos != nil {
			info = infos[key]
		}
		if t := s.Type(); t == shim.TypeList || t == shim.TypeSet {
			n.List = s.MaxItems() != 1
			if info != nil && info.MaxItemsOne != nil {
				n.List = !*info.MaxItemsOne
			}
		}
		if r, ok := s.Elem().(shim.Resource); ok {
			var sub map[string]*tfbridge.SchemaInfo
			if info != nil && info.Elem != nil {
				sub = info.Elem.Fields
			}
			n.Fields = walk(r.Schema(), sub)
		}
		fields[name] = n
		return true
	})
	return fields
}
