package ingest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/retrieval"
	"github.com/ponder-rlm/ponder/retrieval/embedded"
)

// TestMain lets the test binary act as an ingesting child process for the
// kill -9 test.
func TestMain(m *testing.M) {
	if dir := os.Getenv("PONDER_TEST_INGEST_CHILD"); dir != "" {
		os.Exit(ingestChild(dir, os.Getenv("PONDER_TEST_STORE")))
	}
	os.Exit(m.Run())
}

// ingestChild ingests dir into store, printing "acked SOURCE" as soon as
// each batch is durably stored, then blocking (the parent kills it).
func ingestChild(dir, store string) int {
	st, err := embedded.Open(store, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	w := bufio.NewWriter(os.Stdout)
	ing := New(st, &Options{Collection: "big", BatchBytes: 64 << 10, Workers: 2, OnStored: func(srcs []string) {
		for _, s := range srcs {
			fmt.Fprintln(w, "acked "+s)
		}
		w.Flush()
	}})
	if _, err := ing.Run(context.Background(), []string{dir}, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprintln(w, "done")
	w.Flush()
	select {}
}

// TestKill9LosesNothingAcknowledged kills an ingesting process with
// SIGKILL mid-run, reopens its store and checks that every document whose
// batch was acknowledged is there, whole, and searchable, and that the
// store's counts agree with its documents.
func TestKill9LosesNothingAcknowledged(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const files = 400
	para := strings.Repeat("Ordinary filler words about station logistics and weekly schedules. ", 12)
	for i := range files {
		var b strings.Builder
		fmt.Fprintf(&b, "# File %d\n\n", i)
		for j := range 20 {
			fmt.Fprintf(&b, "Paragraph %d mentions marker%05dx%02d. %s\n\n", j, i, j, para)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%05d.md", i)), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	store := filepath.Join(t.TempDir(), "store.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PONDER_TEST_INGEST_CHILD="+dir, "PONDER_TEST_STORE="+store)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]bool{}
	sc := bufio.NewScanner(out)
	deadline := time.AfterFunc(60*time.Second, func() { _ = cmd.Process.Kill() })
	defer deadline.Stop()
	for sc.Scan() {
		line := sc.Text()
		if src, ok := strings.CutPrefix(line, "acked "); ok {
			acked[src] = true
		}
		if len(acked) >= files/4 || line == "done" {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if len(acked) == 0 {
		t.Fatalf("the child acknowledged nothing; stderr: %s", stderr.String())
	}
	if len(acked) >= files {
		t.Fatalf("the child finished before the kill; make the corpus bigger")
	}

	st, err := embedded.Open(store, nil)
	if err != nil {
		t.Fatalf("reopen after kill -9: %v", err)
	}
	defer st.Close()
	ctx := context.Background()
	var srcs []string
	for s := range acked {
		srcs = append(srcs, s)
	}
	docs, err := st.Documents(ctx, "big", srcs)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range srcs {
		d, ok := docs[s]
		if !ok {
			t.Fatalf("acknowledged document %s is missing after kill -9 (%d acknowledged)", s, len(acked))
		}
		i := 0
		fmt.Sscanf(filepath.Base(s), "f%05d.md", &i)
		for _, j := range []int{0, 19} {
			hits, err := st.Search(ctx, "big", retrieval.Query{Text: fmt.Sprintf("marker%05dx%02d", i, j), K: 1})
			if err != nil || len(hits) != 1 || hits[0].Source != s {
				t.Fatalf("chunk %d of acknowledged %s not searchable: %v %v", j, s, hits, err)
			}
		}
		if d.Chunks < 2 {
			t.Fatalf("%s has %d chunks", s, d.Chunks)
		}
	}
	// The store is consistent: its counts equal the sum over documents.
	all, err := st.ListDocuments(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	chunks := 0
	for _, d := range all {
		chunks += d.Chunks
	}
	info, err := st.Collection(ctx, "big")
	if err != nil || info.Documents != len(all) || info.Chunks != chunks || len(all) < len(acked) {
		t.Fatalf("after kill -9: info %+v, %d documents with %d chunks listed, %d acknowledged (%v)", info, len(all), chunks, len(acked), err)
	}
	t.Logf("killed after %d acknowledged documents; %d stored", len(acked), len(all))
}
