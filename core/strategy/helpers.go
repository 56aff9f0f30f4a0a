package strategy

import "sync"

// helpers are long-lived goroutines that run a search's short concurrent
// jobs (valuing new children, scoring steps). Starting a goroutine per job
// costs little next to an LLM call, but with a fast policy it was a quarter
// of a search's time: each new goroutine grows its stack through the deep
// call into the evaluator. A job that no helper is free to take at once gets
// a goroutine of its own, so jobs never wait for one another.
type helpers struct {
	jobs chan func()
	wg   sync.WaitGroup
}

// startHelpers starts n helpers; stop ends them.
func startHelpers(n int) *helpers {
	h := &helpers{jobs: make(chan func())}
	for i := 0; i < n; i++ {
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			for job := range h.jobs {
				job()
			}
		}()
	}
	return h
}

// do runs job on a free helper, or on a new goroutine when none is free.
func (h *helpers) do(job func()) {
	select {
	case h.jobs <- job:
	default:
		go job()
	}
}

// stop ends the helpers once they finish their jobs.
func (h *helpers) stop() {
	close(h.jobs)
	h.wg.Wait()
}
