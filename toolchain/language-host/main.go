// pulumi-language-python: a small stand-in for Pulumi's Python language host.
//
// The real host (github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3) is refused by the
// Go module proxy reachable from here, so this program implements the parts of the LanguageRuntime
// gRPC service that `pulumi preview/up/destroy/refresh/stack ...` and the Automation API use, on top
// of sdk/v3's sdk/python/toolchain package (pip, poetry and uv virtual environments):
//
//	Handshake, GetPluginInfo, GetRequiredPlugins/GetRequiredPackages (empty: plugins load on demand),
//	Run (runs pulumi-language-python-exec with the project's python), InstallDependencies, About,
//	GetProgramDependencies, Cancel.
//
// Not implemented (the engine reports "unimplemented"): RunPlugin (Python plugins/component
// providers), GenerateProgram/GenerateProject/GeneratePackage (pulumi convert, package gen-sdk),
// Template/RuntimeOptionsPrompts (pulumi new prompts), Pack, Link.
//
// The engine starts it as `pulumi-language-python [-flags] ENGINE_ADDRESS`; it prints the port it
// listens on, as every plugin does.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"google.golang.org/grpc"
	pbempty "google.golang.org/protobuf/types/known/emptypb"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"github.com/pulumi/pulumi/sdk/v3/python/toolchain"
)

// set with -ldflags "-X main.version=..."
var version = "3.0.0-dev"

// exit code pulumi-language-python-exec uses after it has shown the user an actionable error
const bailExitCode = 32

type host struct {
	pulumirpc.UnimplementedLanguageRuntimeServer

	mu            sync.Mutex
	engineAddress string
	tracing       string
	cancel        chan bool
	running       map[*exec.Cmd]struct{}
}

func main() {
	h := &host{cancel: make(chan bool), running: map[*exec.Cmd]struct{}{}}
	// The engine runs `pulumi-language-python [-flag value ...] ENGINE_ADDRESS`; older engines passed
	// other flags (-root, -virtualenv, ...). Go's flag package would reject unknown ones, so parse
	// leniently: every flag takes a value, the last plain argument is the engine address.
	args := os.Args[1:]
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			h.engineAddress = a
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name == "version" {
			fmt.Println(version)
			return
		}
		if !hasVal && i+2 < len(args) {
			i++
			val = args[i]
		}
		if name == "tracing" {
			h.tracing = val
		}
	}

	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Cancel: h.cancel,
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, h)
			return nil
		},
		Options: rpcutil.OpenTracingServerInterceptorOptions(nil),
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "fatal: could not start language host RPC server: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("%d\n", handle.Port)
	if err := <-handle.Done; err != nil {
		fmt.Fprintf(os.Stderr, "fatal: language host RPC stopped serving: %v\n", err)
		os.Exit(1)
	}
}

func (h *host) Handshake(ctx context.Context, req *pulumirpc.LanguageHandshakeRequest) (*pulumirpc.LanguageHandshakeResponse, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if req.GetEngineAddress() != "" {
		h.engineAddress = req.GetEngineAddress()
	}
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (h *host) GetPluginInfo(ctx context.Context, _ *pbempty.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: strings.TrimPrefix(version, "v")}, nil
}

// Plugins are resolved on demand when the program registers resources (from PATH or ~/.pulumi/plugins),
// so nothing is announced up front.
func (h *host) GetRequiredPlugins(ctx context.Context, req *pulumirpc.GetRequiredPluginsRequest) (*pulumirpc.GetRequiredPluginsResponse, error) {
	return &pulumirpc.GetRequiredPluginsResponse{}, nil
}

func (h *host) GetRequiredPackages(ctx context.Context, req *pulumirpc.GetRequiredPackagesRequest) (*pulumirpc.GetRequiredPackagesResponse, error) {
	return &pulumirpc.GetRequiredPackagesResponse{}, nil
}

// options reads the runtime options of Pulumi.yaml (runtime.options: virtualenv, toolchain, typechecker).
func options(info *pulumirpc.ProgramInfo) (toolchain.PythonOptions, error) {
	opts := toolchain.PythonOptions{}
	if info == nil {
		wd, _ := os.Getwd()
		opts.Root, opts.ProgramDir = wd, wd
		return opts, nil
	}
	opts.Root = info.GetRootDirectory()
	opts.ProgramDir = info.GetProgramDirectory()
	if opts.ProgramDir == "" {
		opts.ProgramDir = opts.Root
	}
	m := map[string]any{}
	if info.GetOptions() != nil {
		m = info.GetOptions().AsMap()
	}
	if v, ok := m["virtualenv"].(string); ok && v != "" {
		opts.Virtualenv = v
		if !filepath.IsAbs(v) {
			opts.Virtualenv = filepath.Join(opts.Root, v)
		}
	}
	if v, ok := m["typechecker"].(string); ok {
		switch strings.ToLower(v) {
		case "mypy":
			opts.Typechecker = toolchain.TypeCheckerMypy
		case "pyright":
			opts.Typechecker = toolchain.TypeCheckerPyright
		case "":
		default:
			return opts, fmt.Errorf("unsupported typechecker option: %s", v)
		}
	}
	if v, ok := m["toolchain"].(string); ok {
		switch strings.ToLower(v) {
		case "pip":
			opts.Toolchain = toolchain.Pip
		case "poetry":
			opts.Toolchain = toolchain.Poetry
		case "uv":
			opts.Toolchain = toolchain.Uv
		case "":
		default:
			return opts, fmt.Errorf("unsupported toolchain option: %s", v)
		}
	}
	return opts, nil
}

// execScript finds pulumi-language-python-exec: next to this binary, else on PATH.
func execScript() (string, error) {
	const name = "pulumi-language-python-exec"
	if self, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(self); err == nil {
			self = real
		}
		for _, dir := range []string{filepath.Dir(self), filepath.Dir(os.Args[0])} {
			p := filepath.Join(dir, name)
			if st, err := os.Stat(p); err == nil && !st.IsDir() {
				return p, nil
			}
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("could not find %s next to the language host or on PATH: %w", name, err)
	}
	return p, nil
}

func (h *host) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	script, err := execScript()
	if err != nil {
		return nil, err
	}
	opts, err := options(req.GetInfo())
	if err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}
	tc, err := toolchain.ResolveToolchain(opts)
	if err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}
	if err := tc.ValidateVenv(ctx); err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}

	h.mu.Lock()
	engine := h.engineAddress
	h.mu.Unlock()

	args := []string{"-u", script}
	add := func(k, v string) {
		if v != "" {
			args = append(args, "--"+k, v)
		}
	}
	add("monitor", req.GetMonitorAddress())
	add("engine", engine)
	add("project", req.GetProject())
	add("stack", req.GetStack())
	add("pwd", req.GetPwd())
	if req.GetDryRun() {
		add("dry_run", "true")
	}
	add("parallel", fmt.Sprint(req.GetParallel()))
	add("tracing", h.tracing)
	add("organization", req.GetOrganization())
	if req.GetInfo() != nil {
		add("root_directory", req.GetInfo().GetRootDirectory())
	}
	entry := "."
	if req.GetInfo() != nil && req.GetInfo().GetEntryPoint() != "" {
		entry = req.GetInfo().GetEntryPoint()
		if !filepath.IsAbs(entry) && req.GetInfo().GetProgramDirectory() != "" {
			entry = filepath.Join(req.GetInfo().GetProgramDirectory(), entry)
		}
	} else if req.GetProgram() != "" {
		entry = req.GetProgram()
	}
	args = append(args, entry)
	args = append(args, req.GetArgs()...)

	cmd, err := tc.Command(ctx, args...)
	if err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}
	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
	if cfg := req.GetConfig(); len(cfg) > 0 {
		b, err := json.Marshal(cfg)
		if err != nil {
			return nil, err
		}
		env = append(env, "PULUMI_CONFIG="+string(b))
	}
	if keys := req.GetConfigSecretKeys(); len(keys) > 0 {
		b, err := json.Marshal(keys)
		if err != nil {
			return nil, err
		}
		env = append(env, "PULUMI_CONFIG_SECRET_KEYS="+string(b))
	}
	env = append(env, "PYTHONUNBUFFERED=1")
	cmd.Env = env
	if req.GetPwd() != "" {
		cmd.Dir = req.GetPwd()
	}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr

	if err := cmd.Start(); err != nil {
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("could not start the Python program: %v", err)}, nil
	}
	h.track(cmd, true)
	err = cmd.Wait()
	h.track(cmd, false)
	if err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			if exitErr.ExitCode() == bailExitCode {
				return &pulumirpc.RunResponse{Bail: true}, nil
			}
			return &pulumirpc.RunResponse{Error: fmt.Sprintf("Program exited with non-zero exit code: %d", exitErr.ExitCode())}, nil
		}
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("problem executing program (could not run language executor): %v", err)}, nil
	}
	return &pulumirpc.RunResponse{}, nil
}

func (h *host) track(cmd *exec.Cmd, add bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if add {
		h.running[cmd] = struct{}{}
	} else {
		delete(h.running, cmd)
	}
}

func (h *host) Cancel(ctx context.Context, _ *pbempty.Empty) (*pbempty.Empty, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for cmd := range h.running {
		if cmd.Process != nil {
			_ = cmd.Process.Signal(os.Interrupt)
		}
	}
	return &pbempty.Empty{}, nil
}

type streamWriter struct {
	send   func(*pulumirpc.InstallDependenciesResponse) error
	stderr bool
}

func (w streamWriter) Write(p []byte) (int, error) {
	b := append([]byte(nil), p...)
	r := &pulumirpc.InstallDependenciesResponse{Stdout: b}
	if w.stderr {
		r = &pulumirpc.InstallDependenciesResponse{Stderr: b}
	}
	if err := w.send(r); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (h *host) InstallDependencies(req *pulumirpc.InstallDependenciesRequest, server grpc.ServerStreamingServer[pulumirpc.InstallDependenciesResponse]) error {
	opts, err := options(req.GetInfo())
	if err != nil {
		return err
	}
	tc, err := toolchain.ResolveToolchain(opts)
	if err != nil {
		return err
	}
	var out, errw io.Writer = streamWriter{send: server.Send}, streamWriter{send: server.Send, stderr: true}
	dir := opts.ProgramDir
	if dir == "" {
		dir = req.GetDirectory()
	}
	return tc.InstallDependencies(server.Context(), dir, req.GetUseLanguageVersionTools(), true, out, errw)
}

func (h *host) About(ctx context.Context, req *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	opts, err := options(req.GetInfo())
	if err != nil {
		return nil, err
	}
	tc, err := toolchain.ResolveToolchain(opts)
	if err != nil {
		return nil, err
	}
	info, err := tc.About(ctx)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.AboutResponse{
		Executable: info.PythonExecutable,
		Version:    info.PythonVersion.String(),
		Metadata:   map[string]string{"toolchain": toolchain.Name(opts.Toolchain), "host": "bgp4mesh stand-in"},
	}, nil
}

func (h *host) GetProgramDependencies(ctx context.Context, req *pulumirpc.GetProgramDependenciesRequest) (*pulumirpc.GetProgramDependenciesResponse, error) {
	opts, err := options(req.GetInfo())
	if err != nil {
		return nil, err
	}
	tc, err := toolchain.ResolveToolchain(opts)
	if err != nil {
		return nil, err
	}
	pkgs, err := tc.ListPackages(ctx, req.GetTransitiveDependencies())
	if err != nil {
		return nil, err
	}
	resp := &pulumirpc.GetProgramDependenciesResponse{}
	for _, p := range pkgs {
		resp.Dependencies = append(resp.Dependencies, &pulumirpc.DependencyInfo{Name: p.Name, Version: p.Version})
	}
	return resp, nil
}
