package eval

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ponder-rlm/ponder/core"
)

// ManifestSchema names the version of manifest.json.
const ManifestSchema = "ponder.eval/v1"

// RunConfig is what gives a run's records their meaning: two runs with
// the same RunConfig may share a directory, others may not. Strategies,
// budgets, --limit, --offset and --concurrency are not part of it: adding
// a strategy or a budget, or raising --limit, extends a run.
type RunConfig struct {
	Dataset       string            `json:"dataset"`
	DatasetSHA256 string            `json:"dataset_sha256"`
	Fields        map[string]string `json:"fields,omitempty"`
	Pack          string            `json:"pack"`
	Grader        string            `json:"grader"`
	Seed          int64             `json:"seed"`
	Model         string            `json:"model"`
	// Params are the user's --param values by strategy.
	Params        map[string]core.Params `json:"params,omitempty"`
	Oracle        bool                   `json:"oracle,omitempty"`
	Tools         []string               `json:"tools,omitempty"`
	BudgetTokens  int64                  `json:"budget_tokens,omitempty"`
	Timeout       string                 `json:"timeout,omitempty"`
	BudgetMapping string                 `json:"budget_mapping"`
	Grading       string                 `json:"grading,omitempty"`
}

// Hash is the hex SHA-256 of the configuration's JSON.
func (c RunConfig) Hash() string {
	b, _ := json.Marshal(c)
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Manifest is a run directory's manifest.json.
type Manifest struct {
	Schema     string    `json:"schema"`
	ConfigHash string    `json:"config_hash"`
	Config     RunConfig `json:"config"`
	// Strategies and Budgets are every one run into this directory.
	Strategies []string          `json:"strategies"`
	Budgets    []int64           `json:"budgets"`
	Rules      map[string]string `json:"budget_rules"`
	Items      int               `json:"dataset_items"`
	Created    time.Time         `json:"created"`
	Updated    time.Time         `json:"updated"`
	Version    string            `json:"ponder_version,omitempty"`
}

// ErrConfigMismatch is wrapped when --out holds a run of another
// configuration.
var ErrConfigMismatch = errors.New("run directory holds another configuration")

// ReadManifest reads dir/manifest.json.
func ReadManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("read manifest %s: %v", filepath.Join(dir, ManifestFile), err)
	}
	if m.Schema != ManifestSchema {
		return nil, fmt.Errorf("read manifest %s: schema %q, want %q", filepath.Join(dir, ManifestFile), m.Schema, ManifestSchema)
	}
	return &m, nil
}

func writeManifest(dir string, m *Manifest) (err error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	path := filepath.Join(dir, ManifestFile)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp) // a full disk leaves no manifest.json.tmp behind
		}
	}()
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("write manifest: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write manifest: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	return nil
}

// checkConfig compares the configuration of an existing manifest with
// this run's and names what differs.
func checkConfig(dir string, old *Manifest, cfg RunConfig) error {
	if old.ConfigHash == cfg.Hash() {
		return nil
	}
	var a, b map[string]any
	ja, _ := json.Marshal(old.Config)
	jb, _ := json.Marshal(cfg)
	_ = json.Unmarshal(ja, &a)
	_ = json.Unmarshal(jb, &b)
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	var diffs []string
	for k := range keys {
		if !reflect.DeepEqual(a[k], b[k]) {
			diffs = append(diffs, fmt.Sprintf("%s %s, now %s", k, short(a[k]), short(b[k])))
		}
	}
	sort.Strings(diffs)
	if len(diffs) == 0 {
		diffs = []string{"config hash " + old.ConfigHash[:12]}
	}
	if old.Config.Grading != cfg.Grading || old.Config.BudgetMapping != cfg.BudgetMapping {
		// No flag brings back the rules of another Ponder.
		return fmt.Errorf("%w: --out %s was run by a Ponder (%s) that spends budgets or grades records by other rules "+
			"(%s); its records cannot be extended with this one's: use a new --out, or that Ponder",
			ErrConfigMismatch, dir, orUnknown(old.Version), strings.Join(diffs, "; "))
	}
	return fmt.Errorf("%w: --out %s was run with %s; use a new --out, or the flags of that run (%s)",
		ErrConfigMismatch, dir, strings.Join(diffs, "; "), filepath.Join(dir, ManifestFile))
}

// mergeParams checks that every strategy of this run that the directory
// ran before is run with the --param values it had, and returns the
// directory's values with those of the strategies new to it added.
func mergeParams(dir string, old *Manifest, params map[string]core.Params, strategies []string) (map[string]core.Params, error) {
	merged := map[string]core.Params{}
	for s, p := range old.Config.Params {
		merged[s] = p
	}
	for _, s := range strategies {
		was, now := old.Config.Params[s], params[s]
		if slices.Contains(old.Strategies, s) || len(was) > 0 {
			if !sameParams(was, now) {
				return nil, fmt.Errorf("%w: --out %s ran %s with params %s, now %s; use a new --out, or the flags of that run (%s)",
					ErrConfigMismatch, dir, s, short(paramsOrNil(was)), short(paramsOrNil(now)), filepath.Join(dir, ManifestFile))
			}
			continue
		}
		if len(now) > 0 {
			merged[s] = now
		}
	}
	if len(merged) == 0 {
		return nil, nil
	}
	return merged, nil
}

// sameParams compares parameters as the manifest keeps them (JSON).
func sameParams(a, b core.Params) bool {
	ja, _ := json.Marshal(paramsOrNil(a))
	jb, _ := json.Marshal(paramsOrNil(b))
	return string(ja) == string(jb)
}

func paramsOrNil(p core.Params) any {
	if len(p) == 0 {
		return nil
	}
	return p
}

func orUnknown(version string) string {
	if version == "" {
		return "version unknown"
	}
	return version
}

func short(v any) string {
	if v == nil {
		return "unset"
	}
	b, _ := json.Marshal(v)
	s := string(b)
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

// lockDir takes an exclusive lock on dir/.lock so that two evals never
// append to one results file; the lock goes with the process.
func lockDir(dir string) (func(), error) {
	path := filepath.Join(dir, ".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		f.Close()
		who := strings.TrimSpace(string(b))
		if who != "" {
			who = " (pid " + who + ")"
		}
		// ErrBadOptions: a refused --out is the user's to change.
		return nil, badOptions("another ponder eval is writing to %s%s; wait for it or use another --out", dir, who)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() {
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, nil
}

func mergeStrings(a, b []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range append(append([]string(nil), a...), b...) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func mergeInts(a, b []int64) []int64 {
	seen := map[int64]bool{}
	var out []int64
	for _, v := range append(append([]int64(nil), a...), b...) {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
