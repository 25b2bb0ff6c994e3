package main

// mux serves the bridged Terraform resources and the native docker:index/image:Image from one
// plugin: calls for an Image URN go to imageProvider, everything else to the bridge.

import (
	"context"
	"sync"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/emptypb"
	structpb "google.golang.org/protobuf/types/known/structpb"
)

var marshalOpts = plugin.MarshalOptions{KeepUnknowns: true, KeepSecrets: true, KeepResources: true, KeepOutputValues: true}

func unmarshal(s *structpb.Struct) (resource.PropertyMap, error) {
	if s == nil {
		return resource.PropertyMap{}, nil
	}
	return plugin.UnmarshalProperties(s, marshalOpts)
}

func marshal(m resource.PropertyMap) (*structpb.Struct, error) {
	return plugin.MarshalProperties(m, plugin.MarshalOptions{KeepUnknowns: true, KeepSecrets: true, KeepResources: true})
}

type mux struct {
	pulumirpc.ResourceProviderServer // the bridge
	image                            *imageProvider

	mu   sync.Mutex
	host string // provider configuration "host" (docker:host)
}

func newMux(bridge pulumirpc.ResourceProviderServer) *mux {
	m := &mux{ResourceProviderServer: bridge}
	m.image = &imageProvider{dockerHost: func() string {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.host
	}}
	return m
}

func (m *mux) Configure(ctx context.Context, req *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	host := req.GetVariables()["docker:config:host"]
	if args, err := unmarshal(req.GetArgs()); err == nil {
		if h, known := str(args, "host"); known && h != "" {
			host = h
		}
	}
	m.mu.Lock()
	m.host = host
	m.mu.Unlock()
	return m.ResourceProviderServer.Configure(ctx, req)
}

func (m *mux) Check(ctx context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	if isImage(req.GetUrn()) {
		return m.image.Check(ctx, req)
	}
	return m.ResourceProviderServer.Check(ctx, req)
}

func (m *mux) Diff(ctx context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	if isImage(req.GetUrn()) {
		return m.image.Diff(ctx, req)
	}
	return m.ResourceProviderServer.Diff(ctx, req)
}

func (m *mux) Create(ctx context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	if isImage(req.GetUrn()) {
		return m.image.Create(ctx, req)
	}
	return m.ResourceProviderServer.Create(ctx, req)
}

func (m *mux) Read(ctx context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	if isImage(req.GetUrn()) {
		return m.image.Read(ctx, req)
	}
	return m.ResourceProviderServer.Read(ctx, req)
}

func (m *mux) Update(ctx context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	if isImage(req.GetUrn()) {
		return m.image.Update(ctx, req)
	}
	return m.ResourceProviderServer.Update(ctx, req)
}

func (m *mux) Delete(ctx context.Context, req *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	if isImage(req.GetUrn()) {
		return &emptypb.Empty{}, m.image.Delete(ctx, req)
	}
	return m.ResourceProviderServer.Delete(ctx, req)
}
