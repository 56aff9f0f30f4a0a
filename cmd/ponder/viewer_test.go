package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/server/ui/uitest"
)

// freeAddr returns a loopback address nothing listens on (yet).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startPonder runs the binary in the background until the test ends
// (SIGTERM, then a kill after 10s) and returns its command.
func startPonder(t *testing.T, env []string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(ponderBin, args...)
	cmd.Env = append(append(cleanEnv(), "PONDER_LOG_LEVEL=warn"), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("ponder %s ignored SIGTERM for 10s; stderr:\n%s", args[0], stderr.String())
		}
	})
	return cmd
}

func waitHealthy(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never answered 200", url)
}

// The "done when": `ponder serve` with the simulator behind it, the
// viewer open at /ui, a search started through the OpenAI-compatible API,
// and the tree growing in the page while it runs.
func TestServeViewerWatchesASearch(t *testing.T) {
	t.Parallel()
	b := uitest.NewBrowser(t, 1280, 800)
	simAddr, addr := freeAddr(t), freeAddr(t)
	startPonder(t, nil, "sim-llm", "--addr", simAddr, "--latency", "120ms", "--seed", "2")
	waitHealthy(t, "http://"+simAddr+"/healthz")
	const token = "viewer-test-token-0123456789"
	startPonder(t, []string{"PONDER_LLM_BASE_URL=http://" + simAddr + "/v1", "PONDER_DATA_DIR=" + t.TempDir(),
		"PONDER_TOKEN=" + token, "PONDER_RECORD_PROMPTS=true", "PONDER_LLM_CONCURRENCY=2"}, "serve", "--addr", addr)
	base := "http://" + addr
	waitHealthy(t, base+"/healthz")

	b.Do(t, chromedp.Navigate(base+"/ui/?token="+token))
	b.WaitFor(t, "the empty viewer", `!document.getElementById("runs-empty").hidden && document.getElementById("conn").textContent === "live"`)

	type answer struct {
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
	}
	got := make(chan answer, 1)
	go func() {
		body := `{"model": "best-of-n", "messages": [{"role": "user", "content": "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?"}], "ponder": {"params": {"n": 6}}}`
		req, _ := http.NewRequest(http.MethodPost, base+"/v1/chat/completions", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		var a answer
		if resp, err := http.DefaultClient.Do(req); err != nil {
			t.Errorf("chat completion: %v", err)
		} else {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || json.Unmarshal(b, &a) != nil || len(a.Choices) == 0 {
				t.Errorf("chat completion: %s %s", resp.Status, b)
			}
		}
		got <- a
	}()

	// The run shows up by itself and its tree grows while it runs.
	b.WaitFor(t, "the running search", `document.getElementById("tree").dataset.status === "running" && document.querySelectorAll("#nodes .node").length >= 2`)
	uitest.Eval[chromedp.Void](t, b, `window.__sameDocument = true`)
	eventsRunning := uitest.Eval[int](t, b, `+document.getElementById("tree").dataset.events`)
	a := <-got
	b.WaitFor(t, "the finished search", `document.getElementById("tree").dataset.status === "done" && document.getElementById("tree").dataset.source === "trace"`)
	id := uitest.Eval[string](t, b, `document.getElementById("tree").dataset.run`)

	req, _ := http.NewRequest(http.MethodGet, base+"/ui/api/runs/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tr core.Trace
	err = json.NewDecoder(resp.Body).Decode(&tr)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	nodes := tr.Structure.Len()
	if shown := uitest.Eval[int](t, b, `document.querySelectorAll("#nodes .node").length`); shown != nodes {
		t.Fatalf("the page drew %d nodes; the trace has %d", shown, nodes)
	}
	if !uitest.Eval[bool](t, b, `window.__sameDocument === true`) || eventsRunning >= len(tr.Events) {
		t.Fatalf("the page did not follow the run live: %d of %d events while running, same document: %v",
			eventsRunning, len(tr.Events), uitest.Eval[bool](t, b, `window.__sameDocument === true`))
	}
	if len(a.Choices) > 0 && !strings.Contains(a.Choices[0].Message.Content, tr.Answer) {
		t.Errorf("the API answered %q, the viewer's trace says %q", a.Choices[0].Message.Content, tr.Answer)
	}
	if got := uitest.Eval[string](t, b, `document.getElementById("run-answer").textContent`); got != tr.Answer {
		t.Errorf("the page shows answer %q, the trace %q", got, tr.Answer)
	}
	b.Do(t, chromedp.Click(chromedp.CSS(`#nodes circle[data-key="1"]`)))
	b.WaitFor(t, "node 1's details", `document.getElementById("details").dataset.node === "1"`)
	n1 := tr.Structure.MustNode(1)
	d := uitest.Eval[string](t, b, `document.getElementById("details").textContent`)
	for _, want := range []string{strings.TrimSpace(n1.Content), "made this node", "Natalia sold clips"} {
		if !strings.Contains(d, want) {
			t.Errorf("node 1's details lack %q:\n%.600s", want, d)
		}
	}
	b.Screenshot(t, "serve-viewer.png")

	// Without the token the viewer's API is closed.
	resp, err = http.Get(base + "/ui/api/runs")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the runs list without a token: %s", resp.Status)
	}
}

// `ponder serve` on a read-only disk serves: a run answers, and its trace
// is not kept (was: "data dir ...: read-only file system" and no server).
func TestServeOnAReadOnlyDisk(t *testing.T) {
	t.Parallel()
	ro := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", ro).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a read-only tmpfs here (%v: %s)", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", ro).Run() })
	simAddr, addr := freeAddr(t), freeAddr(t)
	startPonder(t, nil, "sim-llm", "--addr", simAddr, "--seed", "2")
	waitHealthy(t, "http://"+simAddr+"/healthz")
	startPonder(t, []string{"PONDER_LLM_BASE_URL=http://" + simAddr + "/v1", "PONDER_DATA_DIR=" + filepath.Join(ro, "data")}, "serve", "--addr", addr)
	waitHealthy(t, "http://"+addr+"/healthz")
	resp, err := http.Post("http://"+addr+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"cot","messages":[{"role":"user","content":"What is 2+2?"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"stopped_reason":"done"`) {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}
