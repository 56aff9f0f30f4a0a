package tasks

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/ponder-rlm/ponder/core"
)

var (
	mu    sync.RWMutex
	packs = map[string]core.Pack{}
)

// Register adds a pack by its name; a duplicate name panics.
func Register(p core.Pack) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := packs[p.Name()]; dup {
		panic(fmt.Sprintf("tasks: pack %q registered twice", p.Name()))
	}
	packs[p.Name()] = p
}

func init() {
	Register(core.GenericPack{})
	Register(GSM8K{})
	Register(MATH{})
	Register(Game24{})
}

// Get returns the pack registered under name.
func Get(name string) (core.Pack, error) {
	mu.RLock()
	defer mu.RUnlock()
	if p, ok := packs[name]; ok {
		return p, nil
	}
	return nil, fmt.Errorf("unknown task pack %q (known: %s)", name, strings.Join(namesLocked(), ", "))
}

// Names lists the registered packs.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	return namesLocked()
}

func namesLocked() []string {
	out := make([]string, 0, len(packs))
	for k := range packs {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
