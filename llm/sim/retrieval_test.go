package sim

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ponder-rlm/ponder/core"
)

func TestGroundedAnswersFromThePassage(t *testing.T) {
	t.Parallel()
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	problem := core.GroundedProblem("What is the emergency radio frequency of Orion station?", "docs", []core.Chunk{
		{Source: "/docs/guide.md", Text: "The admin console listens on port 7443. Backups run nightly."},
		{Source: "/docs/handbook.pdf", Meta: map[string]string{"page": "2"},
			Text: "Chapter 2. Emergency procedures. The emergency radio frequency of Orion station is 146.520 MHz. The assembly point is the red hangar."},
	})
	gen, kind := s.plan(core.GenericPack{}.SolvePrompt(problem))
	got := gen(rand.New(rand.NewPCG(1, 2))).text
	if kind != "grounded" || !strings.Contains(got, "[2] (/docs/handbook.pdf (page 2))") ||
		!strings.Contains(got, `\boxed{The emergency radio frequency of Orion station is 146.520 MHz}`) {
		t.Fatalf("kind %s reply %q", kind, got)
	}
	// Without passages the simulator behaves as before.
	if _, kind := s.plan(core.GenericPack{}.SolvePrompt("What is 2 + 3?")); kind == "grounded" {
		t.Fatal("an ungrounded prompt was answered from passages")
	}
}
