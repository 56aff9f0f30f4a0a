package plugins

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/internal/text"
	"github.com/ponder-rlm/ponder/sdk"
	"github.com/ponder-rlm/ponder/tools"
)

// Inspect starts the binary at path, completes the handshake, asks what it
// is and stops it. The manifest it returns (Dir is path's directory) is
// what Install would write.
func Inspect(ctx context.Context, path string, opts *Options) (Manifest, time.Duration, error) {
	o := New(opts).opts
	abs, err := filepath.Abs(path)
	if err != nil {
		return Manifest{}, 0, err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return Manifest{}, 0, fmt.Errorf("plugin binary: %w", err)
	}
	if !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
		return Manifest{}, 0, fmt.Errorf("plugin binary %s is not an executable file (build it with go build, or chmod +x it)", path)
	}
	sha, err := FileSHA256(abs)
	if err != nil {
		return Manifest{}, 0, err
	}
	label := filepath.Base(abs)
	start := time.Now()
	logs := newLogLimiter(o.Logger, label)
	defer logs.close()
	client, rpc, err := launch(context.Background(), &o, label, abs, filepath.Dir(abs), nil, sha, logs)
	if err != nil {
		return Manifest{}, 0, err
	}
	defer func() {
		// A helper the plugin started may hold its output open, and
		// go-plugin's Kill waits for that to close.
		pid, _ := processOf(client)
		stopGracefully(client, pid)
	}()
	dctx, cancel := context.WithTimeout(ctx, o.StartTimeout)
	defer cancel()
	_, desc, err := sdk.Probe(dctx, rpc)
	if err != nil {
		return Manifest{}, 0, fmt.Errorf("plugin %s: %w", label, err)
	}
	ready := time.Since(start)
	if desc.ProtocolVersion != sdk.ProtocolVersion {
		return Manifest{}, ready, fmt.Errorf("plugin %s: %w: it describes itself as protocol %d, this Ponder speaks %d", desc.Name, ErrProtocol, desc.ProtocolVersion, sdk.ProtocolVersion)
	}
	m := Manifest{Name: desc.Name, Kind: desc.Kind, Version: desc.Version, ProtocolVersion: desc.ProtocolVersion,
		Binary: filepath.Base(abs), SHA256: sha, Summary: desc.Summary, Params: desc.Params, Tool: desc.Tool,
		Shape: desc.Shape, InstalledAt: time.Now().UTC().Truncate(time.Second), Dir: filepath.Dir(abs)}
	if err := m.Validate(); err != nil {
		return Manifest{}, ready, err
	}
	return m, ready, nil
}

// Install copies the plugin binary at path into pluginsDir/<name>/ and
// writes its manifest with the binary's sha256, replacing an earlier
// version of the same plugin. The binary is started once to learn its
// name, kind and parameters.
func Install(ctx context.Context, path, pluginsDir string, opts *Options) (Manifest, error) {
	m, _, err := Inspect(ctx, path, opts)
	if err != nil {
		return Manifest{}, err
	}
	if opts != nil && opts.Taken != nil {
		if by := opts.Taken(m.Kind, m.Name); by != "" {
			return Manifest{}, fmt.Errorf("plugin %s: %w by %s: Ponder would skip this plugin (built-ins are never replaced); "+
				"rename it (sdk.Plugin's Name, or a tool's Spec().Name) and build it again", m.Name, ErrNameTaken, by)
		}
	}
	dir := filepath.Join(pluginsDir, m.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Manifest{}, fmt.Errorf("install plugin %s: %w", m.Name, err)
	}
	dst := filepath.Join(dir, m.Binary)
	if err := copyExecutable(path, dst); err != nil {
		return Manifest{}, fmt.Errorf("install plugin %s: %w", m.Name, err)
	}
	sum, err := FileSHA256(dst)
	if err != nil {
		return Manifest{}, err
	}
	if sum != m.SHA256 {
		return Manifest{}, fmt.Errorf("install plugin %s: %w: %s changed while it was installed", m.Name, ErrChecksum, path)
	}
	m.Dir, err = filepath.Abs(dir)
	if err != nil {
		return Manifest{}, err
	}
	if err := WriteManifest(m); err != nil {
		return Manifest{}, fmt.Errorf("install plugin %s: %w", m.Name, err)
	}
	// Remove binaries of earlier versions that had another file name.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if n := e.Name(); n != m.Binary && n != ManifestFile && !e.IsDir() && !strings.HasPrefix(n, ".") {
			_ = os.Remove(filepath.Join(dir, n))
		}
	}
	return m, nil
}

// ErrNameTaken is a plugin whose name a part of the host has (see
// Options.Taken).
var ErrNameTaken = errors.New("its name is taken")

// ErrNotInstalled is wrapped by Remove when pluginsDir has no plugin of
// that name.
var ErrNotInstalled = errors.New("not installed")

// Remove deletes the installed plugin name from pluginsDir: its
// directory, when it holds a manifest. A manifest this Ponder cannot read
// (damaged, unreadable, or written for another plugin protocol) does not
// stop it: such a plugin is never loaded, and removing it is the way out.
func Remove(pluginsDir, name string) error {
	if err := sdk.ValidName(name); err != nil {
		return err
	}
	dir := filepath.Join(pluginsDir, name)
	if _, err := os.Lstat(filepath.Join(dir, ManifestFile)); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("plugin %s is %w in %s", name, ErrNotInstalled, pluginsDir)
		}
		return fmt.Errorf("remove plugin %s: %w", name, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove plugin %s: %w", name, err)
	}
	return nil
}

func copyExecutable(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return replaceFile(dst, 0o755, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}

// CheckReport is what Check found.
type CheckReport struct {
	Manifest Manifest `json:"manifest"`
	// Installed is set when the checked plugin has a manifest; ChecksumOK
	// then says whether the binary still matches it.
	Installed  bool    `json:"installed"`
	ChecksumOK bool    `json:"checksum_ok"`
	ReadyMS    float64 `json:"ready_ms"`
	// TestCall says what the test call did.
	TestCall string `json:"test_call"`
}

// Check verifies a plugin: its checksum against its manifest (when target
// is a plugin directory, or the binary its directory's manifest names),
// the handshake and protocol version, what it describes, and one test
// call through the same adapters the server uses: a tool is called with
// {} (when its schema accepts {}), an evaluator scores a two-step path, a
// strategy solves "What is 6 times 7?" against a canned policy on a budget
// of 8 calls.
func Check(ctx context.Context, target string, opts *Options) (CheckReport, error) {
	var rep CheckReport
	bin := target
	var installed *Manifest
	if st, err := os.Stat(target); err == nil && st.IsDir() {
		m, err := ReadManifest(target)
		if err != nil {
			return rep, err
		}
		installed = &m
	} else if m, err := ReadManifest(filepath.Dir(target)); err == nil && m.Binary == filepath.Base(target) {
		// The binary of an installed plugin, named by its path: checked
		// against its manifest as when named by its directory.
		installed = &m
	}
	if installed != nil {
		rep.Installed = true
		if err := VerifyBinary(*installed); err != nil {
			return rep, err
		}
		rep.ChecksumOK = true
		bin = installed.Path()
	}
	m, ready, err := Inspect(ctx, bin, opts)
	if err != nil {
		return rep, err
	}
	rep.Manifest, rep.ReadyMS = m, float64(ready.Microseconds())/1000
	mgr := New(opts)
	defer mgr.Close()
	if err := mgr.Add(m); err != nil {
		return rep, err
	}
	cctx, cancel := context.WithTimeout(ctx, mgr.opts.CallTimeout)
	defer cancel()
	switch m.Kind {
	case sdk.KindTool:
		// The host validates every call's arguments before the plugin
		// sees them, and so does the test call.
		if sch, err := tools.CompileSchema(m.Tool.Schema); err == nil {
			if err := tools.ValidateArgs(sch, json.RawMessage(`{}`)); err != nil {
				rep.TestCall = fmt.Sprintf("skipped: {} does not meet the tool's schema (%v); try it with `ponder tools call %s --args '{...}'`",
					text.Clip(err.Error(), 200), m.Name)
				break
			}
		}
		res, err := mgr.Tools()[0].Call(cctx, json.RawMessage(`{}`))
		if err != nil {
			return rep, fmt.Errorf("test call: %w", err)
		}
		rep.TestCall = fmt.Sprintf("called with {}: is_error=%t, %q", res.IsError, text.Clip(res.Text, 120))
	case sdk.KindEvaluator:
		reg := core.NewRegistry()
		mgr.Register(reg)
		ev, err := reg.Evaluator(m.Name, nil)
		if err != nil {
			return rep, err
		}
		path := []core.Node{{ID: 0, Kind: core.KindProblem, Content: "What is 2 + 2?"},
			{ID: 1, Kind: core.KindAnswer, Content: "2 + 2 = 4. The answer is 4.", Answer: "4", Terminal: true, Depth: 1, Parents: []core.NodeID{0}}}
		e, err := ev.Evaluate(cctx, core.EvalRequest{Task: core.Task{Problem: "What is 2 + 2?", Truth: "4"}, Path: path, Policy: cannedPolicy})
		switch {
		case errors.Is(err, core.ErrNotApplicable):
			rep.TestCall = "scored \"What is 2 + 2? ... 4\": not applicable"
		case err != nil:
			return rep, fmt.Errorf("test call: %w", err)
		default:
			rep.TestCall = fmt.Sprintf("scored \"What is 2 + 2? ... 4\": %s %.3f", e.Kind, e.Score)
		}
	case sdk.KindStrategy:
		reg := core.NewRegistry()
		mgr.Register(reg)
		eng := core.NewEngine(cannedPolicy, reg, nil)
		res, err := eng.Solve(cctx, core.Task{Problem: "What is 6 times 7?", Strategy: m.Name, Limits: core.Limits{LLMCalls: 8}})
		if err != nil {
			return rep, fmt.Errorf("test call: %w", err)
		}
		if res.Stopped == core.StopError {
			return rep, fmt.Errorf("test call: the strategy failed: %s", res.Error)
		}
		rep.TestCall = fmt.Sprintf("solved \"What is 6 times 7?\" with a canned policy: answer %q, %s, stopped: %s",
			res.Answer, text.Count(int(res.Usage.LLMCalls), "LLM call"), res.Stopped)
	}
	return rep, nil
}

// cannedPolicy answers every request with a short solution ending in 42,
// for Check's test calls.
var cannedPolicy = core.PolicyFunc(func(_ context.Context, req core.CompletionRequest) (core.Completion, error) {
	n := max(1, req.N)
	c := core.Completion{PromptTokens: 20, CompletionTokens: int64(8 * n)}
	for range n {
		c.Choices = append(c.Choices, core.Choice{Text: "6 times 7 is 42. The answer is 42.", FinishReason: "stop"})
	}
	return c, nil
})
