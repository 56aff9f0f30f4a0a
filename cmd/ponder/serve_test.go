package main

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/internal/testutil"
)

// The start says whether requests need a bearer token: server.token and
// server.tokens (per-client tokens) each make them (it said token=false
// with only server.tokens set).
func TestServeSaysWhetherATokenIsNeeded(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  []string
		want bool
	}{
		{"none", nil, false},
		{"server.token", []string{"PONDER_TOKEN=s3cret-one"}, true},
		{"server.tokens only", []string{"PONDER_TOKENS=alice-s3cret,bob-s3cret"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(ponderBin, "serve", "--addr", "127.0.0.1:0")
			cmd.Env = append(append(cleanEnv(), "PONDER_DATA_DIR="+t.TempDir(), "PONDER_LOG_FORMAT=json",
				"PONDER_LLM_BASE_URL="+closedPort(t)), tc.env...)
			cmd.Dir = t.TempDir()
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var log testutil.LockedBuffer
			token := make(chan bool, 1)
			read := make(chan struct{})
			// Wait closes stderr: only once all of it has been read.
			t.Cleanup(func() { _ = cmd.Process.Kill(); <-read; _ = cmd.Wait() })
			go func() {
				defer close(read)
				sc := bufio.NewScanner(stderr)
				for sc.Scan() {
					log.Write(append(sc.Bytes(), '\n'))
					var m struct {
						Message string
						Token   bool
					}
					if json.Unmarshal(sc.Bytes(), &m) == nil && m.Message == "ponder serving" {
						token <- m.Token
					}
				}
			}()
			select {
			case got := <-token:
				if got != tc.want {
					t.Errorf("ponder serving says token=%v, want %v:\n%s", got, tc.want, log.String())
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("ponder serve did not start: %s", log.String())
			}
		})
	}
}
