package plugins

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/sdk"
	"github.com/ponder-rlm/ponder/tools"
)

// ManifestFile is the name of a plugin's manifest inside its directory.
const ManifestFile = "manifest.json"

// Manifest describes one installed plugin. `ponder plugins install` writes
// it next to the binary from what the plugin describes and the binary's
// checksum; the host reads it at start-up, so plugins are listed and
// registered without being started, and refuses to start a binary whose
// sha256 differs.
type Manifest struct {
	Name            string   `json:"name"`
	Kind            sdk.Kind `json:"kind"`
	Version         string   `json:"version"`
	ProtocolVersion int      `json:"protocol_version"`
	// Binary is the executable's file name inside the plugin directory.
	Binary string `json:"binary"`
	// SHA256 is the hex sha256 of Binary, checked before every start.
	SHA256  string           `json:"sha256"`
	Summary string           `json:"summary,omitempty"`
	Params  []core.ParamSpec `json:"params,omitempty"`
	Tool    *core.ToolSpec   `json:"tool,omitempty"`
	Shape   string           `json:"shape,omitempty"`
	// Args are passed to the binary (rarely needed).
	Args        []string  `json:"args,omitempty"`
	InstalledAt time.Time `json:"installed_at"`

	// Dir is the directory the manifest was read from (not stored).
	Dir string `json:"-"`
}

// Path is the binary's absolute path.
func (m Manifest) Path() string { return filepath.Join(m.Dir, m.Binary) }

// Validate checks a manifest's fields, naming the one to fix.
func (m Manifest) Validate() error {
	if err := sdk.ValidName(m.Name); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	switch m.Kind {
	case sdk.KindTool, sdk.KindEvaluator, sdk.KindStrategy:
	default:
		return fmt.Errorf("manifest of %s: kind must be tool, evaluator or strategy, got %q", m.Name, m.Kind)
	}
	if m.ProtocolVersion != sdk.ProtocolVersion {
		return fmt.Errorf("plugin %s speaks plugin protocol %d but this Ponder speaks %d: rebuild it against the current sdk and install it again",
			m.Name, m.ProtocolVersion, sdk.ProtocolVersion)
	}
	if m.Binary == "" || m.Binary != filepath.Base(m.Binary) || m.Binary == "." || m.Binary == ".." {
		return fmt.Errorf("manifest of %s: binary must be a file name inside the plugin directory, got %q", m.Name, m.Binary)
	}
	if b, err := hex.DecodeString(m.SHA256); err != nil || len(b) != sha256.Size {
		return fmt.Errorf("manifest of %s: sha256 must be 64 hex digits, got %q", m.Name, m.SHA256)
	}
	if m.Kind == sdk.KindTool && (m.Tool == nil || m.Tool.Name != m.Name) {
		return fmt.Errorf("manifest of %s: a tool plugin needs its tool spec with the same name", m.Name)
	}
	if m.Kind == sdk.KindTool && len(bytes.TrimSpace(m.Tool.Schema)) > 0 {
		// The host checks every call's arguments against it: a schema that
		// does not compile would leave the tool out at every start.
		if _, err := tools.CompileSchema(m.Tool.Schema); err != nil {
			return fmt.Errorf("manifest of %s: the tool's argument %v", m.Name, err)
		}
		// Arguments are always a JSON object (function calling, MCP,
		// `ponder tools call --args`): a schema of another type could
		// never be met.
		var top struct {
			Type any `json:"type"`
		}
		if err := json.Unmarshal(m.Tool.Schema, &top); err != nil {
			return fmt.Errorf("manifest of %s: the tool's argument schema must be a JSON object", m.Name)
		}
		if t, ok := top.Type.(string); top.Type != nil && (!ok || t != "object") {
			return fmt.Errorf("manifest of %s: the tool's argument schema must have \"type\": \"object\" (arguments are a JSON object), got %s",
				m.Name, string(mustJSON(top.Type)))
		}
	}
	if _, err := core.Resolve(m.Params, nil); err != nil {
		return fmt.Errorf("manifest of %s: params: %w", m.Name, err)
	}
	return nil
}

// ReadManifest reads dir/manifest.json.
func ReadManifest(dir string) (Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return Manifest{}, fmt.Errorf("read plugin manifest: %w", err)
	}
	var m Manifest
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.DisallowUnknownFields()
	if err := d.Decode(&m); err != nil {
		return Manifest{}, fmt.Errorf("plugin manifest %s: %v", filepath.Join(dir, ManifestFile), err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Manifest{}, err
	}
	m.Dir = abs
	// Defaults come back from JSON as float64; store them typed like
	// built-in specs.
	for i, p := range m.Params {
		if p.Default == nil {
			continue
		}
		rv, err := core.Resolve([]core.ParamSpec{{Name: p.Name, Type: p.Type, Enum: p.Enum}}, core.Params{p.Name: p.Default})
		if err != nil {
			return Manifest{}, fmt.Errorf("plugin manifest %s: param %s default: %w", m.Name, p.Name, err)
		}
		m.Params[i].Default = rv[p.Name]
		if d, ok := rv[p.Name].(time.Duration); ok {
			m.Params[i].Default = d.String()
		}
	}
	if err := m.Validate(); err != nil {
		return Manifest{}, fmt.Errorf("%s: %w", dir, err)
	}
	return m, nil
}

// WriteManifest writes m to m.Dir/manifest.json atomically.
func WriteManifest(m Manifest) error {
	if err := m.Validate(); err != nil {
		return err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	return writeFileAtomic(filepath.Join(m.Dir, ManifestFile), append(b, '\n'), 0o644)
}

// ErrChecksum is wrapped when a plugin binary's sha256 differs from its
// manifest.
var ErrChecksum = errors.New("checksum mismatch")

// FileSHA256 returns the hex sha256 of the file at path.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// VerifyChecksum checks m's binary against its manifest.
func VerifyChecksum(m Manifest) error {
	sum, err := FileSHA256(m.Path())
	if err != nil {
		return fmt.Errorf("plugin %s: %w", m.Name, err)
	}
	if sum != m.SHA256 {
		return fmt.Errorf("plugin %s: %w: %s has sha256 %s…, the manifest says %s…; refusing to start it (reinstall with `ponder plugins install`)",
			m.Name, ErrChecksum, m.Path(), sum[:12], m.SHA256[:min(12, len(m.SHA256))])
	}
	return nil
}

// ShadowedError is a problem Discover returns for a valid plugin that is
// not used: a plugin of the same name in a directory searched before it
// comes first. Listings show it as such (with its name and directory),
// not as a broken plugin.
type ShadowedError struct {
	// Manifest is the unused plugin's.
	Manifest Manifest
	// By is the directory of the plugin of that name that is used.
	By string
}

func (e *ShadowedError) Error() string {
	return fmt.Sprintf("plugin %s in %s ignored: already found in %s", e.Manifest.Name, e.Manifest.Dir, e.By)
}

// ErrNotExecutable is wrapped when a plugin's binary may not be run: its
// execute permission is off (a copy that lost it, a chmod), so every start
// would fail with "permission denied".
var ErrNotExecutable = errors.New("not executable")

// VerifyBinary checks m's binary as a start would: its sha256 against the
// manifest (VerifyChecksum), then that it is a file Ponder may execute.
func VerifyBinary(m Manifest) error {
	if err := VerifyChecksum(m); err != nil {
		return err
	}
	st, err := os.Stat(m.Path())
	if err != nil {
		return fmt.Errorf("plugin %s: %w", m.Name, err)
	}
	return executable(m.Name, m.Path(), st.Mode())
}

// executable says how to fix a binary at path, of mode, that cannot be
// started for want of its execute permission; nil when it has it.
func executable(name, path string, mode os.FileMode) error {
	if mode.IsRegular() && mode&0o111 != 0 {
		return nil
	}
	if !mode.IsRegular() {
		return fmt.Errorf("plugin %s: %w: %s is not a regular file; install the plugin again with `ponder plugins install PATH`",
			name, ErrNotExecutable, path)
	}
	return fmt.Errorf("plugin %s: %w: %s has mode %s, without execute permission, so it cannot be started: run `chmod +x %s`, or install it again with `ponder plugins install PATH`",
		name, ErrNotExecutable, path, mode.Perm(), path)
}

// Discover reads the manifest of every plugin directory under dirs (each
// plugin is a subdirectory holding manifest.json and its binary). A
// directory that does not exist is skipped. Bad manifests and duplicate
// names are returned as problems; the first plugin of a name wins, and
// each later one is a *ShadowedError.
func Discover(dirs []string) (found []Manifest, problems []error) {
	seen := map[string]string{}
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			problems = append(problems, fmt.Errorf("plugin directory %s: %w", dir, err))
			continue
		}
		sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			sub := filepath.Join(dir, e.Name())
			if _, err := os.Stat(filepath.Join(sub, ManifestFile)); err != nil {
				// No manifest: not a plugin. One that cannot be looked at
				// (a directory Ponder may not read) is said, not skipped
				// without a word.
				if !errors.Is(err, os.ErrNotExist) {
					problems = append(problems, fmt.Errorf("plugin directory %s: %w", sub, err))
				}
				continue
			}
			m, err := ReadManifest(sub)
			if err != nil {
				problems = append(problems, err)
				continue
			}
			if prev, dup := seen[m.Name]; dup {
				problems = append(problems, &ShadowedError{Manifest: m, By: prev})
				continue
			}
			seen[m.Name] = m.Dir
			found = append(found, m)
		}
	}
	return found, problems
}

func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	if err := replaceFile(path, mode, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	}); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// replaceFile writes path atomically: fill writes a temporary file in the
// same directory, which gets mode and is renamed over path.
func replaceFile(path string, mode os.FileMode, fill func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := fill(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
