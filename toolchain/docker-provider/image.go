package main

// docker:index/image:Image, pulumi-docker's own (non-Terraform) resource, re-implemented on the
// docker CLI and served next to the bridged resources (see mux.go).
//
// Inputs: imageName, build {context, dockerfile, args, target, platform, network, addHosts,
// cacheFrom {images}, builderVersion}, registry {server, username, password}, skipPush,
// buildOnPreview. Outputs: the inputs plus baseImageName, imageName, context, dockerfile,
// platform, registryServer, repoDigest. The id is the built image's id.
//
// As pulumi-docker: any input change rebuilds in place (no replacement), a change inside the
// build context does too (Check adds build.contextDigest, a hash of the context's files), and
// delete leaves the image in the engine. Differences: the build runs `docker build` with the
// classic builder unless build.builderVersion is "BuilderBuildKit" (BuildKit may try to reach a
// registry, which these machines cannot), .dockerignore is not applied to the digest, and
// `docker login` uses the registry credentials only for the push.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

const imageTok = "docker:index/image:Image"

func isImage(urn string) bool {
	if urn == "" {
		return false
	}
	t := string(resource.URN(urn).Type())
	return t == imageTok || t == "docker:image:Image"
}

var imageInputs = []string{"imageName", "build", "registry", "skipPush", "buildOnPreview"}

type imageProvider struct {
	dockerHost func() string
}

// plain unwraps secrets; ok is false when the value is (or contains) an unknown.
func plain(v resource.PropertyValue) (resource.PropertyValue, bool) {
	if v.IsSecret() {
		v = v.SecretValue().Element
	}
	if v.IsComputed() || v.IsOutput() && !v.OutputValue().Known || v.ContainsUnknowns() {
		return v, false
	}
	if v.IsOutput() {
		v = v.OutputValue().Element
	}
	return v, true
}

func str(m resource.PropertyMap, key string) (string, bool) {
	v, ok := m[resource.PropertyKey(key)]
	if !ok || v.IsNull() {
		return "", true
	}
	v, known := plain(v)
	if !known {
		return "", false
	}
	if v.IsString() {
		return v.StringValue(), true
	}
	return "", true
}

func obj(m resource.PropertyMap, key string) (resource.PropertyMap, bool) {
	v, ok := m[resource.PropertyKey(key)]
	if !ok || v.IsNull() {
		return resource.PropertyMap{}, true
	}
	if v.IsSecret() {
		v = v.SecretValue().Element
	}
	if v.IsComputed() || v.IsOutput() && !v.OutputValue().Known {
		return nil, false
	}
	if v.IsOutput() {
		v = v.OutputValue().Element
	}
	if v.IsObject() {
		return v.ObjectValue(), true
	}
	return resource.PropertyMap{}, true
}

func boolean(m resource.PropertyMap, key string) bool {
	v, ok := m[resource.PropertyKey(key)]
	if !ok {
		return false
	}
	v, known := plain(v)
	return known && v.IsBool() && v.BoolValue()
}

// contextDigest hashes every file of the build context (path, mode, content).
func contextDigest(dir string) (string, error) {
	h := sha256.New()
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(paths)
	for _, p := range paths {
		rel, _ := filepath.Rel(dir, p)
		st, err := os.Lstat(p)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%o\x00", filepath.ToSlash(rel), st.Mode())
		if st.Mode()&os.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			io.WriteString(h, target)
		} else if st.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return "", err
			}
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return "", err
			}
		}
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (p *imageProvider) Check(ctx context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	var failures []*pulumirpc.CheckFailure
	if v, ok := news["imageName"]; !ok || v.IsNull() {
		failures = append(failures, &pulumirpc.CheckFailure{Property: "imageName", Reason: "missing required property 'imageName'"})
	}
	if build, known := obj(news, "build"); known {
		ctxDir, known := str(build, "context")
		if known {
			if ctxDir == "" {
				ctxDir = "."
			}
			abs, _ := filepath.Abs(ctxDir)
			if st, err := os.Stat(abs); err != nil || !st.IsDir() {
				failures = append(failures, &pulumirpc.CheckFailure{Property: "build.context",
					Reason: fmt.Sprintf("build context %q is not a directory", ctxDir)})
			} else if digest, err := contextDigest(abs); err == nil {
				b := build.Copy()
				b["contextDigest"] = resource.NewStringProperty(digest)
				if orig := news["build"]; orig.IsSecret() {
					news["build"] = resource.MakeSecret(resource.NewObjectProperty(b))
				} else {
					news["build"] = resource.NewObjectProperty(b)
				}
			}
		}
	}
	inputs, err := marshal(news)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CheckResponse{Inputs: inputs, Failures: failures}, nil
}

func inputsOf(m resource.PropertyMap) resource.PropertyMap {
	out := resource.PropertyMap{}
	for _, k := range imageInputs {
		if v, ok := m[resource.PropertyKey(k)]; ok && !v.IsNull() {
			out[resource.PropertyKey(k)] = v
		}
	}
	return out
}

func (p *imageProvider) Diff(ctx context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	olds, err := unmarshal(req.GetOlds())
	if err != nil {
		return nil, err
	}
	if req.GetOldInputs() != nil {
		if oi, err := unmarshal(req.GetOldInputs()); err == nil && len(oi) > 0 {
			olds = oi
		}
	}
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	olds, news = inputsOf(olds), inputsOf(news)
	ignore := map[string]bool{}
	for _, k := range req.GetIgnoreChanges() {
		ignore[k] = true
	}
	var diffs []string
	detailed := map[string]*pulumirpc.PropertyDiff{}
	for _, k := range imageInputs {
		if ignore[k] {
			continue
		}
		o, hasO := olds[resource.PropertyKey(k)]
		n, hasN := news[resource.PropertyKey(k)]
		if !hasO && !hasN {
			continue
		}
		if hasO && hasN && !n.ContainsUnknowns() && o.DeepEquals(n) {
			continue
		}
		kind := pulumirpc.PropertyDiff_UPDATE
		if !hasO {
			kind = pulumirpc.PropertyDiff_ADD
		} else if !hasN {
			kind = pulumirpc.PropertyDiff_DELETE
		}
		diffs = append(diffs, k)
		detailed[k] = &pulumirpc.PropertyDiff{Kind: kind, InputDiff: true}
	}
	changes := pulumirpc.DiffResponse_DIFF_NONE
	if len(diffs) > 0 {
		changes = pulumirpc.DiffResponse_DIFF_SOME
	}
	return &pulumirpc.DiffResponse{Changes: changes, Diffs: diffs, DetailedDiff: detailed, HasDetailedDiff: true}, nil
}

func (p *imageProvider) docker(ctx context.Context, env []string, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = append(os.Environ(), env...)
	if h := p.dockerHost(); h != "" {
		cmd.Env = append(cmd.Env, "DOCKER_HOST="+h)
	}
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		text := out.String()
		if len(text) > 8000 {
			text = "…" + text[len(text)-8000:]
		}
		return text, fmt.Errorf("docker %s: %w\n%s", args[0], err, text)
	}
	return out.String(), nil
}

// build runs the build (and the push), returning the outputs and the image id.
func (p *imageProvider) build(ctx context.Context, inputs resource.PropertyMap, preview bool) (resource.PropertyMap, string, error) {
	outs := inputs.Copy()
	name, nameKnown := str(inputs, "imageName")
	build, buildKnown := obj(inputs, "build")
	registry, regKnown := obj(inputs, "registry")
	unknown := resource.MakeComputed(resource.NewStringProperty(""))
	set := func(k, v string, known bool) {
		if known {
			outs[resource.PropertyKey(k)] = resource.NewStringProperty(v)
		} else {
			outs[resource.PropertyKey(k)] = unknown
		}
	}
	ctxDir, ctxKnown := "", false
	dockerfile, dfKnown := "", false
	platform, pfKnown := "", false
	if buildKnown {
		ctxDir, ctxKnown = str(build, "context")
		if ctxDir == "" {
			ctxDir = "."
		}
		dockerfile, dfKnown = str(build, "dockerfile")
		if dfKnown && dockerfile == "" && ctxKnown {
			dockerfile = filepath.Join(ctxDir, "Dockerfile")
		}
		platform, pfKnown = str(build, "platform")
	}
	server, serverKnown := "", regKnown
	if regKnown {
		server, serverKnown = str(registry, "server")
	}
	set("baseImageName", name, nameKnown)
	set("imageName", name, nameKnown)
	set("context", ctxDir, ctxKnown)
	set("dockerfile", dockerfile, dfKnown && ctxKnown)
	set("platform", platform, pfKnown)
	set("registryServer", server, serverKnown)

	if preview && !boolean(inputs, "buildOnPreview") {
		outs["repoDigest"] = unknown
		return outs, "", nil
	}
	if !(nameKnown && buildKnown && ctxKnown && dfKnown && pfKnown) || inputs.ContainsUnknowns() {
		if preview {
			outs["repoDigest"] = unknown
			return outs, "", nil
		}
		return nil, "", fmt.Errorf("image %q: inputs are not known", name)
	}

	args := []string{"build", "-t", name, "-f", dockerfile}
	if a, known := obj(build, "args"); known {
		keys := make([]string, 0, len(a))
		for k := range a {
			keys = append(keys, string(k))
		}
		sort.Strings(keys)
		for _, k := range keys {
			v, _ := str(a, k)
			args = append(args, "--build-arg", k+"="+v)
		}
	}
	for _, flag := range []string{"target", "platform", "network"} {
		if v, _ := str(build, flag); v != "" {
			args = append(args, "--"+flag, v)
		}
	}
	if hosts, ok := build["addHosts"]; ok {
		if hv, known := plain(hosts); known && hv.IsArray() {
			for _, h := range hv.ArrayValue() {
				if h.IsString() {
					args = append(args, "--add-host", h.StringValue())
				}
			}
		}
	}
	if cf, known := obj(build, "cacheFrom"); known {
		if imgs, ok := cf["images"]; ok {
			if iv, known := plain(imgs); known && iv.IsArray() {
				for _, i := range iv.ArrayValue() {
					if i.IsString() {
						args = append(args, "--cache-from", i.StringValue())
					}
				}
			}
		}
	}
	args = append(args, ctxDir)
	env := []string{"DOCKER_BUILDKIT=0"}
	if v, _ := str(build, "builderVersion"); v == "BuilderBuildKit" {
		env = []string{"DOCKER_BUILDKIT=1"}
	}
	if _, err := p.docker(ctx, env, "", args...); err != nil {
		return nil, "", fmt.Errorf("building image %q: %w", name, err)
	}
	id, err := p.docker(ctx, nil, "", "image", "inspect", "-f", "{{.Id}}", name)
	if err != nil {
		return nil, "", err
	}
	id = strings.TrimSpace(id)
	digest := ""
	if !boolean(inputs, "skipPush") {
		user, _ := str(registry, "username")
		pass, _ := str(registry, "password")
		if server != "" && user != "" {
			if _, err := p.docker(ctx, nil, pass, "login", "--username", user, "--password-stdin", server); err != nil {
				return nil, "", fmt.Errorf("logging in to %s: %w", server, err)
			}
		}
		if _, err := p.docker(ctx, nil, "", "push", name); err != nil {
			return nil, "", fmt.Errorf("pushing image %q: %w", name, err)
		}
		rd, err := p.docker(ctx, nil, "", "image", "inspect", "-f", "{{range .RepoDigests}}{{println .}}{{end}}", name)
		if err == nil {
			for _, line := range strings.Fields(rd) {
				digest = line
				break
			}
		}
	}
	outs["repoDigest"] = resource.NewStringProperty(digest)
	return outs, id, nil
}

func (p *imageProvider) Create(ctx context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	inputs, err := unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	outs, id, err := p.build(ctx, inputs, req.GetPreview())
	if err != nil {
		return nil, err
	}
	props, err := marshal(outs)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CreateResponse{Id: id, Properties: props}, nil
}

func (p *imageProvider) Update(ctx context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	outs, _, err := p.build(ctx, news, req.GetPreview())
	if err != nil {
		return nil, err
	}
	props, err := marshal(outs)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.UpdateResponse{Properties: props}, nil
}

// Read (refresh) keeps the recorded state; images are a build cache here.
func (p *imageProvider) Read(ctx context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	inputs := req.GetInputs()
	if inputs == nil {
		state, err := unmarshal(req.GetProperties())
		if err != nil {
			return nil, err
		}
		if inputs, err = marshal(inputsOf(state)); err != nil {
			return nil, err
		}
	}
	return &pulumirpc.ReadResponse{Id: req.GetId(), Properties: req.GetProperties(), Inputs: inputs}, nil
}

// Delete leaves the image in the engine, as pulumi-docker does.
func (p *imageProvider) Delete(ctx context.Context, req *pulumirpc.DeleteRequest) error {
	return nil
}
