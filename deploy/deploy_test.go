package deploy_test

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// receiver is the receiver binary built by TestMain with CGO_ENABLED=0.
var receiver string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "graphhook-deploy-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	receiver = filepath.Join(dir, "receiver")
	cmd := exec.Command("go", "build", "-trimpath", "-o", receiver, "./cmd/receiver")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build ./cmd/receiver: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// flags returns the receiver's flag names, from its --help.
func flags(t *testing.T) map[string]bool {
	t.Helper()
	out, err := exec.Command(receiver, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("receiver --help: %v\n%s", err, out)
	}
	names := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s*(?:-[a-zA-Z], )?--([a-z0-9][a-z0-9-]*)`).FindAllStringSubmatch(string(out), -1) {
		names[m[1]] = true
	}
	if !names["listen"] || !names["nats-url"] {
		t.Fatalf("no flags found in --help:\n%s", out)
	}
	return names
}

// envFlag maps GRAPHHOOK_OPS_LISTEN to ops-listen.
func envFlag(env string) (string, bool) {
	name, ok := strings.CutPrefix(env, "GRAPHHOOK_")
	return strings.ReplaceAll(strings.ToLower(name), "_", "-"), ok
}

func TestStaticBinaryHasNoInterpreter(t *testing.T) {
	f, err := elf.Open(receiver)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("the CGO_ENABLED=0 binary has a PT_INTERP header: it is dynamically linked")
		}
	}
	if s := f.Section(".interp"); s != nil {
		t.Fatal("the binary has an .interp section")
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	if len(libs) > 0 {
		t.Fatalf("the binary needs shared libraries %v", libs)
	}
}

// unit reads the systemd unit as key -> values, commented-out settings
// ("#Key=value") included under "#Key".
func unit(t *testing.T) map[string][]string {
	t.Helper()
	data, err := os.ReadFile("systemd/graphhook-receiver.service")
	if err != nil {
		t.Fatal(err)
	}
	kv := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, "="); ok && !strings.Contains(k, " ") {
			kv[k] = append(kv[k], v)
		}
	}
	return kv
}

func TestSystemdUnitIsHardened(t *testing.T) {
	u := unit(t)
	want := map[string]string{
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
		"PrivateDevices": "yes", "DynamicUser": "yes", "CapabilityBoundingSet": "", "RestrictNamespaces": "yes",
		"MemoryDenyWriteExecute": "yes", "SystemCallArchitectures": "native", "LockPersonality": "yes",
		"StateDirectory": "graphhook", "Restart": "on-failure", "UMask": "0077",
		"ExecStart":  "/usr/local/bin/receiver --config /etc/graphhook/receiver.yaml",
		"ExecReload": "/bin/kill -HUP $MAINPID",
	}
	for k, v := range want {
		if got := u[k]; len(got) == 0 || got[0] != v {
			t.Errorf("%s=%q, want %q", k, got, v)
		}
	}
	if !slices.Contains(u["SystemCallFilter"], "@system-service") {
		t.Errorf("SystemCallFilter %q lacks @system-service", u["SystemCallFilter"])
	}
}

func TestSystemdUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (apt-get install systemd); the unit was not verified")
	}
	data, err := os.ReadFile("systemd/graphhook-receiver.service")
	if err != nil {
		t.Fatal(err)
	}
	// verify wants ExecStart to exist: point it at the binary just built.
	path := filepath.Join(t.TempDir(), "graphhook-receiver.service")
	if err := os.WriteFile(path, bytes.ReplaceAll(data, []byte("/usr/local/bin/receiver"), []byte(receiver)), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(analyze, "verify", "--man=no", path)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	// verify exits 0 on unknown keys and bad values, but complains on stderr.
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s%s", err, out, stderr.String())
	}
	// Exposure is reported from 0.0 (locked down) to 10.0; --threshold
	// counts tenths.
	cmd = exec.Command(analyze, "security", "--offline=yes", "--threshold=20", path)
	if out, err := cmd.CombinedOutput(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) && bytes.Contains(out, []byte("Overall exposure level")) {
			t.Fatalf("exposure above 2.0:\n%s", out)
		}
		t.Logf("systemd-analyze security --offline not supported here: %v", err)
	}
}

func TestSystemdConfigUsesReceiverFlags(t *testing.T) {
	known := flags(t)
	data, err := os.ReadFile("systemd/receiver.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("receiver.yaml: %v", err)
	}
	if len(cfg) < 10 {
		t.Fatalf("receiver.yaml has %d settings", len(cfg))
	}
	keys := map[string]bool{}
	for k := range cfg {
		keys[k] = true
	}
	// Commented-out settings are examples to uncomment: check them too.
	for _, m := range regexp.MustCompile(`(?m)^#([a-z0-9-]+):`).FindAllStringSubmatch(string(data), -1) {
		keys[m[1]] = true
	}
	for k := range keys {
		if !known[k] {
			t.Errorf("receiver.yaml sets %q, which is not a receiver flag", k)
		}
	}
	if _, ok := cfg["ops-listen"]; !ok {
		t.Error("receiver.yaml leaves /metrics and /readyz on the public listener (no ops-listen)")
	}
	// Every credential the file reads is handed in by the unit; those in
	// commented-out settings by a commented-out LoadCredential at least.
	u := unit(t)
	loaded := func(keys ...string) map[string]bool {
		ids := map[string]bool{}
		for _, k := range keys {
			for _, v := range u[k] {
				id, _, _ := strings.Cut(v, ":")
				ids[id] = true
			}
		}
		return ids
	}
	active, all := loaded("LoadCredential"), loaded("LoadCredential", "#LoadCredential")
	credRe := regexp.MustCompile(regexp.QuoteMeta("/run/credentials/graphhook-receiver.service/") + `([^,\s]+)`)
	for _, line := range strings.Split(string(data), "\n") {
		commented := strings.HasPrefix(strings.TrimSpace(line), "#")
		for _, m := range credRe.FindAllStringSubmatch(line, -1) {
			if commented && !all[m[1]] || !commented && !active[m[1]] {
				t.Errorf("receiver.yaml reads credential %q, which the unit does not load: %s", m[1], line)
			}
		}
	}
}

// loads runs the receiver with args and env up to the point where it has
// read its settings ("--version" stops it there): settings the receiver does
// not know, or values it cannot parse, fail.
func loads(t *testing.T, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command(receiver, append(args, "--version")...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	if out, err := cmd.CombinedOutput(); err != nil || !bytes.Contains(out, []byte("graphhook receiver")) {
		t.Errorf("receiver %s with %v: %v\n%s", strings.Join(args, " "), env, err, out)
	}
}

func TestSystemdConfigLoads(t *testing.T) {
	loads(t, nil, "--config", "systemd/receiver.yaml")
	// The commented-out examples load too, once uncommented.
	data, err := os.ReadFile("systemd/receiver.yaml")
	if err != nil {
		t.Fatal(err)
	}
	setting := regexp.MustCompile(`^#(([a-z0-9-]+:.*)|(  - .*))$`)
	var all []string
	for _, line := range strings.Split(string(data), "\n") {
		if m := setting.FindStringSubmatch(line); m != nil {
			line = m[1]
		}
		all = append(all, line)
	}
	path := filepath.Join(t.TempDir(), "receiver.yaml")
	if err := os.WriteFile(path, []byte(strings.Join(all, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	loads(t, nil, "--config", path)
}

// manifests decodes every document of the Kubernetes files, by kind.
func manifests(t *testing.T) map[string]map[string]any {
	t.Helper()
	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	byKind := map[string]map[string]any{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var doc map[string]any
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			kind, _ := doc["kind"].(string)
			if kind == "" || doc["apiVersion"] == nil {
				t.Fatalf("%s: a document without kind or apiVersion", f)
			}
			if _, dup := byKind[kind]; dup {
				t.Fatalf("%s: a second %s", f, kind)
			}
			byKind[kind] = doc
		}
	}
	return byKind
}

// at walks a decoded document: at(doc, "spec", "template", 0, "name").
func at(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("at %v: %T is not a mapping", path, v)
			}
			v = m[k]
		case int:
			s, ok := v.([]any)
			if !ok || k >= len(s) {
				t.Fatalf("at %v: %T has no element %d", path, v, k)
			}
			v = s[k]
		}
	}
	return v
}

func TestKubernetesManifests(t *testing.T) {
	known := flags(t)
	docs := manifests(t)
	for _, kind := range []string{"Namespace", "Deployment", "Service", "Secret", "PodDisruptionBudget", "Ingress", "Kustomization"} {
		if docs[kind] == nil {
			t.Fatalf("no %s", kind)
		}
	}
	dep := docs["Deployment"]
	if n, _ := at(t, dep, "spec", "replicas").(int); n < 2 {
		t.Errorf("replicas %v, want at least 2", at(t, dep, "spec", "replicas"))
	}
	podLabels := at(t, dep, "spec", "template", "metadata", "labels").(map[string]any)
	selector := at(t, dep, "spec", "selector", "matchLabels").(map[string]any)
	for k, v := range selector {
		if podLabels[k] != v {
			t.Errorf("selector %s=%v does not match the pod labels", k, v)
		}
	}
	if at(t, dep, "spec", "template", "spec", "securityContext", "runAsNonRoot") != true {
		t.Error("pods may run as root")
	}
	c := at(t, dep, "spec", "template", "spec", "containers", 0)
	if at(t, c, "securityContext", "readOnlyRootFilesystem") != true || at(t, c, "securityContext", "allowPrivilegeEscalation") != false {
		t.Error("container security context not locked down")
	}

	ports := map[string]int{}
	for _, p := range at(t, c, "ports").([]any) {
		ports[at(t, p, "name").(string)] = at(t, p, "containerPort").(int)
	}
	env := map[string]string{}
	for _, e := range at(t, c, "env").([]any) {
		name := at(t, e, "name").(string)
		env[name], _ = at(t, e, "value").(string)
		if f, ok := envFlag(name); !ok || !known[f] {
			t.Errorf("env %s is not a receiver setting", name)
		}
	}
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	var args []string
	for _, a := range at(t, c, "args").([]any) {
		args = append(args, a.(string))
	}
	loads(t, environ, args...)
	if env["GRAPHHOOK_NATS_URL"] == "" {
		t.Error("no GRAPHHOOK_NATS_URL: replicas would each run an embedded NATS server")
	}
	if env["GRAPHHOOK_LISTEN"] != fmt.Sprintf(":%d", ports["http"]) || env["GRAPHHOOK_OPS_LISTEN"] != fmt.Sprintf(":%d", ports["ops"]) {
		t.Errorf("listen %q and ops-listen %q do not match the ports %v", env["GRAPHHOOK_LISTEN"], env["GRAPHHOOK_OPS_LISTEN"], ports)
	}
	for probe, path := range map[string]string{"readinessProbe": "/readyz", "livenessProbe": "/healthz"} {
		if got := at(t, c, probe, "httpGet", "path"); got != path {
			t.Errorf("%s path %v, want %s", probe, got, path)
		}
		if port := at(t, c, probe, "httpGet", "port"); port != "ops" {
			t.Errorf("%s on port %v, want the ops port", probe, port)
		}
	}

	// Args name known flags, and the secret files they read exist in the
	// Secret mounted at that path.
	secret := docs["Secret"]
	secretKeys := at(t, secret, "stringData").(map[string]any)
	var mount string
	for _, vm := range at(t, c, "volumeMounts").([]any) {
		if at(t, vm, "name") == "secrets" {
			mount = at(t, vm, "mountPath").(string)
		}
	}
	vol := at(t, dep, "spec", "template", "spec", "volumes", 0)
	if at(t, vol, "secret", "secretName") != at(t, secret, "metadata", "name") || mount == "" {
		t.Errorf("the secrets volume does not mount Secret %v", at(t, secret, "metadata", "name"))
	}
	for _, a := range at(t, c, "args").([]any) {
		flag, val, _ := strings.Cut(strings.TrimPrefix(a.(string), "--"), "=")
		if !known[flag] {
			t.Errorf("arg %v is not a receiver flag", a)
		}
		if file, ok := strings.CutPrefix(val, mount+"/"); ok {
			file, _, _ = strings.Cut(file, ",")
			if _, ok := secretKeys[file]; !ok {
				t.Errorf("arg %v reads %s, which the Secret does not have", a, file)
			}
		}
	}
	for k := range secretKeys {
		if k == "client-state" {
			continue
		}
		if !slices.ContainsFunc(at(t, c, "args").([]any), func(a any) bool { return strings.Contains(a.(string), "/"+k) }) {
			t.Errorf("Secret key %s is not used", k)
		}
	}

	svc := docs["Service"]
	for k, v := range at(t, svc, "spec", "selector").(map[string]any) {
		if podLabels[k] != v {
			t.Errorf("Service selector %s=%v matches no pod", k, v)
		}
	}
	for _, p := range at(t, svc, "spec", "ports").([]any) {
		tp := at(t, p, "targetPort")
		if name, ok := tp.(string); ok && ports[name] == 0 || tp == "ops" {
			t.Errorf("Service targetPort %v: not a public container port", tp)
		}
	}
	for k, v := range at(t, docs["PodDisruptionBudget"], "spec", "selector", "matchLabels").(map[string]any) {
		if podLabels[k] != v {
			t.Errorf("PodDisruptionBudget selector %s=%v matches no pod", k, v)
		}
	}
	// The Ingress exposes exactly the two notification paths, on the
	// Service's public port, with https and room for a full body.
	ing := docs["Ingress"]
	var paths []string
	for _, p := range at(t, ing, "spec", "rules", 0, "http", "paths").([]any) {
		paths = append(paths, at(t, p, "path").(string))
		if at(t, p, "backend", "service", "name") != at(t, svc, "metadata", "name") || at(t, p, "backend", "service", "port", "name") != "http" {
			t.Errorf("Ingress path %v does not go to the Service's http port", at(t, p, "path"))
		}
	}
	if !slices.Equal(paths, []string{"/notifications", "/lifecycle"}) {
		t.Errorf("Ingress paths %v", paths)
	}
	if at(t, ing, "spec", "tls", 0, "hosts", 0) != at(t, ing, "spec", "rules", 0, "host") {
		t.Error("the Ingress host has no TLS")
	}
	size := at(t, ing, "metadata", "annotations").(map[string]any)["nginx.ingress.kubernetes.io/proxy-body-size"].(string)
	if mb, err := strconv.Atoi(strings.TrimSuffix(size, "m")); err != nil || mb < 4 {
		t.Errorf("Ingress body limit %q, want at least 4m (the receiver's default limit)", size)
	}
	listed := map[string]bool{"kustomization.yaml": true}
	for _, r := range at(t, docs["Kustomization"], "resources").([]any) {
		listed[r.(string)] = true
		if _, err := os.Stat(filepath.Join("kubernetes", r.(string))); err != nil {
			t.Errorf("kustomization resource: %v", err)
		}
	}
	files, _ := filepath.Glob("kubernetes/*.yaml")
	for _, f := range files {
		if !listed[filepath.Base(f)] {
			t.Errorf("%s is not in kustomization.yaml", f)
		}
	}
}

// stage is one FROM section of the Dockerfile.
type stage struct {
	name, base string
	lines      []string
}

func dockerfile(t *testing.T) []stage {
	t.Helper()
	data, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var stages []stage
	// Join continuation lines, drop comments.
	text := regexp.MustCompile(`\\\n\s*`).ReplaceAllString(string(data), " ")
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if f := strings.Fields(line); strings.EqualFold(f[0], "FROM") {
			if len(f) != 4 || !strings.EqualFold(f[2], "AS") {
				t.Fatalf("unnamed stage: %s", line)
			}
			stages = append(stages, stage{name: f[3], base: f[1]})
			continue
		}
		if len(stages) > 0 {
			stages[len(stages)-1].lines = append(stages[len(stages)-1].lines, line)
		}
	}
	return stages
}

func (s stage) has(prefix string) []string {
	var out []string
	for _, l := range s.lines {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

func (s stage) contains(sub string) bool {
	return slices.ContainsFunc(s.lines, func(l string) bool { return strings.Contains(l, sub) })
}

func TestDockerfile(t *testing.T) {
	known := flags(t)
	stages := map[string]stage{}
	all := dockerfile(t)
	for _, s := range all {
		stages[s.name] = s
	}
	if last := all[len(all)-1]; last.name != "static" {
		t.Errorf("the default (last) stage is %s, want static", last.name)
	}
	build, static, bo, ossl := stages["build"], stages["static"], stages["build-openssl"], stages["openssl"]
	if !build.contains("CGO_ENABLED=0 go build") || !build.contains("./cmd/receiver") {
		t.Error("build stage does not build ./cmd/receiver with CGO_ENABLED=0")
	}
	if !strings.HasPrefix(static.base, "gcr.io/distroless/static") && static.base != "scratch" {
		t.Errorf("static stage on %s, want distroless static or scratch", static.base)
	}
	if !bo.contains("CGO_ENABLED=1 go build") || !bo.contains("-tags openssl") || !bo.contains("libssl-dev") {
		t.Error("build-openssl stage does not build with cgo, -tags openssl and libssl-dev")
	}
	if !strings.Contains(ossl.base, "-slim") || !ossl.contains("libssl3") || !ossl.contains("ca-certificates") {
		t.Errorf("openssl stage on %s without libssl3 and CA certificates", ossl.base)
	}
	for _, s := range []stage{static, ossl} {
		users := s.has("USER ")
		if len(users) != 1 {
			t.Errorf("stage %s: USER %v", s.name, users)
			continue
		}
		if u := strings.Fields(users[0])[1]; strings.HasPrefix(u, "0") || strings.HasPrefix(u, "root") {
			t.Errorf("stage %s runs as %s", s.name, u)
		}
		if !s.contains(`ENTRYPOINT ["/usr/local/bin/receiver"]`) {
			t.Errorf("stage %s: no ENTRYPOINT of the receiver", s.name)
		}
		var environ []string
		for _, m := range regexp.MustCompile(`(GRAPHHOOK_[A-Z_]+)=(\S+)`).FindAllStringSubmatch(strings.Join(s.has("ENV "), " "), -1) {
			if f, _ := envFlag(m[1]); !known[f] {
				t.Errorf("stage %s sets %s, not a receiver setting", s.name, m[1])
			}
			environ = append(environ, m[1]+"="+m[2])
		}
		if len(environ) == 0 {
			t.Errorf("stage %s sets no GRAPHHOOK_ settings", s.name)
		}
		loads(t, environ)
	}
}

// TestOpenSSLImageHasTheLibrariesTheBinaryNeeds builds the receiver as the
// Dockerfile's openssl stage does and checks that the Debian packages its
// runtime stage installs provide every shared library the binary needs.
func TestOpenSSLImageHasTheLibrariesTheBinaryNeeds(t *testing.T) {
	list := exec.Command("go", "list", "-tags", "openssl", "-f", "{{len .CgoFiles}}", "./decrypt")
	list.Dir = ".."
	list.Env = append(os.Environ(), "CGO_ENABLED=1")
	out, err := list.Output()
	if err != nil || strings.TrimSpace(string(out)) == "0" {
		t.Skipf("decrypt has no OpenSSL backend in this tree (go list: %v)", err)
	}
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("no dpkg: cannot tell which Debian package holds a library")
	}
	if err := exec.Command("dpkg", "-s", "libssl-dev").Run(); err != nil {
		t.Skip("libssl-dev is not installed (apt-get install libssl-dev); the OpenSSL build was not checked")
	}
	bin := filepath.Join(t.TempDir(), "receiver-openssl")
	build := exec.Command("go", "build", "-tags", "openssl", "-o", bin, "./cmd/receiver")
	build.Dir = ".."
	build.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -tags openssl: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	libs, err := f.ImportedLibraries()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(libs, func(l string) bool { return strings.HasPrefix(l, "libcrypto.so") }) {
		t.Fatalf("the openssl build does not link libcrypto: %v", libs)
	}
	var runtime stage
	for _, s := range dockerfile(t) {
		if s.name == "openssl" {
			runtime = s
		}
	}
	installed := strings.Join(runtime.has("RUN "), " ")
	for _, lib := range libs {
		if strings.HasPrefix(lib, "libc.so") || strings.HasPrefix(lib, "ld-linux") {
			continue // in every Debian image
		}
		out, err := exec.Command("dpkg", "-S", lib).Output()
		if err != nil {
			t.Errorf("no Debian package here holds %s: %v", lib, err)
			continue
		}
		pkg, _, _ := strings.Cut(string(out), ":")
		if !strings.Contains(installed, " "+pkg) {
			t.Errorf("the binary needs %s from package %s, which the openssl stage does not install", lib, pkg)
		}
	}
}
