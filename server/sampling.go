package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/internal/text"
)

// MCP sampling as the policy: when Ponder has no LLM endpoint and the
// client declared the sampling capability, every LLM call of a search
// becomes a sampling/createMessage request to the client, which answers
// with its own model (after asking its user, if it wants). The engine
// meters these calls like any other, so budgets hold; a per-client slot
// pool bounds how many are outstanding at once.

// maxSamplingConcurrency caps server.sampling_concurrency: mcp-go's HTTP
// session queues at most 10 server-to-client requests.
const maxSamplingConcurrency = 8

// samplingPolicy is a core.Policy that asks an MCP client.
type samplingPolicy struct {
	srv     *mcpserver.MCPServer
	slots   chan struct{}
	watch   *sampleWatch
	session string
	timeout time.Duration // server.sampling_timeout; 0: none of its own
	// streams, over HTTP, tells whether the session has a GET stream open,
	// the only one mcp-go sends sampling requests on; streamWait is how
	// long a request waits for one to open. Nil on stdio.
	streams    *getStreams
	streamWait time.Duration
}

var _ core.Policy = (*samplingPolicy)(nil)

// samplingPolicy returns the policy for the client of ctx, or nil when the
// client does not support sampling.
func (s *Server) samplingPolicy(ctx context.Context) core.Policy {
	cs := mcpserver.ClientSessionFromContext(ctx)
	if cs == nil {
		return nil
	}
	info, ok := cs.(mcpserver.SessionWithClientInfo)
	if !ok || info.GetClientCapabilities().Sampling == nil {
		return nil
	}
	if _, ok := cs.(mcpserver.SessionWithSampling); !ok {
		return nil
	}
	// mcp-go queues at most 10 sampling requests per HTTP session.
	n := min(s.cfg.SamplingConcurrency, maxSamplingConcurrency)
	slots, _ := s.samplers.LoadOrStore(cs.SessionID(), make(chan struct{}, n))
	p := &samplingPolicy{srv: s.mcp, slots: slots.(chan struct{}), watch: s.sampleWatch, session: cs.SessionID(),
		timeout: s.cfg.SamplingTimeout}
	if transportOf(ctx) == transportHTTP {
		p.streams, p.streamWait = s.getStreams, s.samplingStreamWait
	}
	return p
}

// Complete implements core.Policy: one sampling request per sample, at
// most len(slots) at a time for this client.
func (p *samplingPolicy) Complete(ctx context.Context, req core.CompletionRequest) (core.Completion, error) {
	n := req.N
	if n < 1 {
		n = 1
	}
	cm := samplingRequest(req)
	prompt := estimateTokens(cm.SystemPrompt)
	for _, m := range req.Messages {
		prompt += estimateTokens(m.Content)
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		out      core.Completion
		firstErr error
	)
	for i := 0; i < n; i++ {
		select {
		case p.slots <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return core.Completion{}, ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-p.slots }()
			res, err := p.request(ctx, cm)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			text, ok := samplingText(res.Content)
			if !ok {
				// An image or audio answer has no text a search can read;
				// taken as "", it spent the calls and ended "no answer".
				if firstErr == nil {
					firstErr = fmt.Errorf("the client's model answered with %s content, not text", contentKind(res.Content))
				}
				return
			}
			out.Choices = append(out.Choices, core.Choice{Text: text, FinishReason: finishReason(res.StopReason)})
			out.PromptTokens += prompt
			out.CompletionTokens += estimateTokens(text)
			if out.Model == "" {
				out.Model = res.Model
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return core.Completion{}, err
	}
	if len(out.Choices) == 0 {
		return core.Completion{}, fmt.Errorf("%w: the MCP client's sampling failed: %v", core.ErrLLMUnavailable, firstErr)
	}
	return out, nil
}

// request sends one sampling request. When ctx ends first (the solve was
// cancelled, or is over), or server.sampling_timeout passes, the client is
// told with notifications/cancelled that its model's answer is no longer
// wanted: mcp-go stops waiting for the response but tells the client
// nothing, so the client's model went on generating, and its user on being
// asked, for a search long gone.
func (p *samplingPolicy) request(ctx context.Context, cm mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	if p.streams != nil && !p.streams.wait(ctx, p.session, p.streamWait) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// mcp-go would queue the request for a stream that may never
		// open, and the solve waited out its deadline (10 minutes by
		// default) to end "stopped: timeout" with no word of why.
		return nil, errNoEventStream
	}
	rctx := ctx
	if p.timeout > 0 {
		// Off by default: a client may ask its user to approve each
		// request, and the solve's own deadline bounds the wait; this
		// one is for solves with none (search.timeout 0) and clients
		// that hang.
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeout(ctx, p.timeout)
		defer cancel()
	}
	nonce := p.watch.add()
	// Each request carries its own nonce, by which the transport's writer
	// (sampleWatch.observe) learns the JSON-RPC id it was sent with.
	old, _ := cm.Metadata.(map[string]any)
	meta := make(map[string]any, len(old)+1)
	for k, v := range old {
		meta[k] = v
	}
	meta[sampleNonceKey] = nonce
	cm.Metadata = meta
	res, err := p.srv.RequestSampling(rctx, cm)
	if err != nil && rctx.Err() != nil {
		reason := "Ponder's search no longer needs this sample: it was cancelled or has ended"
		if ctx.Err() == nil {
			reason = "no answer within " + p.timeout.String() + " (server.sampling_timeout)"
			err = fmt.Errorf("the MCP client did not answer the sampling request within %s (server.sampling_timeout)", p.timeout)
		}
		p.watch.cancel(nonce, func(id json.RawMessage) {
			_ = p.srv.SendNotificationToSpecificClient(p.session, string(mcp.MethodNotificationCancelled), map[string]any{
				"requestId": id, "reason": reason,
			})
		})
		return res, err
	}
	p.watch.remove(nonce)
	return res, err
}

// errNoEventStream fails a sampling request over HTTP whose session has no
// GET stream open: its client would never see it.
var errNoEventStream = errors.New("the MCP client has no event stream open to receive sampling requests on: over HTTP, " +
	"Ponder sends them (each LLM call of a solve the client's own model answers) on the session's GET /mcp stream; " +
	"open it (GET /mcp with the Mcp-Session-Id header and Accept text/event-stream, as the TypeScript SDK does) and keep it open while " +
	"solving, or have the server's operator configure an LLM endpoint for Ponder to use instead")

// samplingStreamWait is how long a sampling request waits for its
// session's GET stream to open: a client opens it just after initialize,
// and may call solve at once.
const samplingStreamWait = 2 * time.Second

// getStreams counts the GET streams open for each MCP session over HTTP.
type getStreams struct {
	mu      sync.Mutex
	open    map[string]int
	changed chan struct{} // closed and replaced when a stream opens
}

func newGetStreams() *getStreams {
	return &getStreams{open: map[string]int{}, changed: make(chan struct{})}
}

// opened counts a stream of session open until the function it returns
// is called (once: the GET handler defers it).
func (g *getStreams) opened(session string) (closed func()) {
	g.mu.Lock()
	g.open[session]++
	close(g.changed)
	g.changed = make(chan struct{})
	g.mu.Unlock()
	return func() {
		g.mu.Lock()
		if g.open[session]--; g.open[session] <= 0 {
			delete(g.open, session)
		}
		g.mu.Unlock()
	}
}

// wait reports whether session has a stream open, waiting up to d for
// one to open; false too when ctx ends first.
func (g *getStreams) wait(ctx context.Context, session string, d time.Duration) bool {
	timeout := time.NewTimer(d)
	defer timeout.Stop()
	for {
		g.mu.Lock()
		n, ch := g.open[session], g.changed
		g.mu.Unlock()
		if n > 0 {
			return true
		}
		select {
		case <-ch:
		case <-timeout.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// sampleNonceKey names the nonce in a sampling request's metadata.
const sampleNonceKey = "ponder_request"

// sampleWatch pairs each sampling request Ponder sends with the JSON-RPC id
// its transport gave it (mcp-go does not say), so that a request no longer
// wanted can be cancelled.
type sampleWatch struct {
	next atomic.Uint64
	mu   sync.Mutex
	m    map[string]*pendingSample
}

type pendingSample struct {
	id     json.RawMessage          // the request's id, once written
	cancel func(id json.RawMessage) // set when cancelled before it was written
}

func newSampleWatch() *sampleWatch { return &sampleWatch{m: map[string]*pendingSample{}} }

func (w *sampleWatch) add() string {
	nonce := "s" + strconv.FormatUint(w.next.Add(1), 36)
	w.mu.Lock()
	w.m[nonce] = &pendingSample{}
	w.mu.Unlock()
	return nonce
}

func (w *sampleWatch) remove(nonce string) {
	w.mu.Lock()
	delete(w.m, nonce)
	w.mu.Unlock()
}

// cancel calls send with the request's id now if it was written, else
// when it is (HTTP queues requests); a request never written is forgotten
// after a minute.
func (w *sampleWatch) cancel(nonce string, send func(id json.RawMessage)) {
	w.mu.Lock()
	ps, ok := w.m[nonce]
	if !ok {
		w.mu.Unlock()
		return
	}
	if ps.id != nil {
		delete(w.m, nonce)
		w.mu.Unlock()
		send(ps.id)
		return
	}
	ps.cancel = send
	w.mu.Unlock()
	time.AfterFunc(time.Minute, func() { w.remove(nonce) })
}

// observe looks at a message a transport writes (a JSON-RPC line, or SSE
// events) for Ponder's sampling requests, and records their ids.
func (w *sampleWatch) observe(p []byte) {
	if w == nil || !bytes.Contains(p, []byte(`"sampling/createMessage"`)) || !bytes.Contains(p, []byte(sampleNonceKey)) {
		return
	}
	for _, line := range bytes.Split(p, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if data, ok := bytes.CutPrefix(line, []byte("data:")); ok {
			line = bytes.TrimSpace(data)
		}
		var m struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params struct {
				Metadata map[string]any `json:"metadata"`
			} `json:"params"`
		}
		if json.Unmarshal(line, &m) != nil || m.Method != string(mcp.MethodSamplingCreateMessage) || len(m.ID) == 0 {
			continue
		}
		nonce, _ := m.Params.Metadata[sampleNonceKey].(string)
		w.mu.Lock()
		ps, ok := w.m[nonce]
		var send func(json.RawMessage)
		if ok {
			if ps.cancel != nil {
				send = ps.cancel
				delete(w.m, nonce)
			} else {
				ps.id = append(json.RawMessage(nil), m.ID...)
			}
		}
		w.mu.Unlock()
		if send != nil {
			// Not from the writer's goroutine: the notification is
			// written by the same transport.
			go send(append(json.RawMessage(nil), m.ID...))
		}
	}
}

// samplingRequest maps a completion request to sampling/createMessage:
// system messages become the system prompt, tool results user text.
func samplingRequest(req core.CompletionRequest) mcp.CreateMessageRequest {
	var sys []string
	var msgs []mcp.SamplingMessage
	for _, m := range req.Messages {
		switch m.Role {
		case "system":
			sys = append(sys, m.Content)
		case "assistant":
			msgs = append(msgs, mcp.SamplingMessage{Role: mcp.RoleAssistant, Content: mcp.NewTextContent(m.Content)})
		case "tool":
			msgs = append(msgs, mcp.SamplingMessage{Role: mcp.RoleUser, Content: mcp.NewTextContent("Tool result:\n" + m.Content)})
		default:
			msgs = append(msgs, mcp.SamplingMessage{Role: mcp.RoleUser, Content: mcp.NewTextContent(m.Content)})
		}
	}
	maxTokens := req.MaxTokens
	if maxTokens <= 0 {
		maxTokens = 1024
	}
	cm := mcp.CreateMessageRequest{CreateMessageParams: mcp.CreateMessageParams{
		Messages:       msgs,
		SystemPrompt:   strings.Join(sys, "\n\n"),
		IncludeContext: "none",
		MaxTokens:      maxTokens,
		StopSequences:  req.Stop,
		Metadata:       map[string]any{"ponder_purpose": req.Purpose},
	}}
	if req.Temperature != nil {
		cm.Temperature = *req.Temperature
	}
	if req.Model != "" && req.Model != "default" {
		cm.ModelPreferences = &mcp.ModelPreferences{Hints: []mcp.ModelHint{{Name: req.Model}}}
	}
	return cm
}

// samplingText is the text of a sampling answer; ok is false when it holds
// no text content at all (an image, audio).
func samplingText(content any) (text string, ok bool) {
	switch c := content.(type) {
	case mcp.TextContent:
		return c.Text, true
	case *mcp.TextContent:
		return c.Text, true
	case []mcp.Content:
		var b strings.Builder
		for _, x := range c {
			if t, ok2 := samplingText(x); ok2 {
				b.WriteString(t)
				ok = true
			}
		}
		return b.String(), ok
	case map[string]any:
		s, ok := c["text"].(string)
		return s, ok
	}
	return "", false
}

// contentKind names a content's type for an error message.
func contentKind(content any) string {
	switch c := content.(type) {
	case mcp.ImageContent, *mcp.ImageContent:
		return "image"
	case mcp.AudioContent, *mcp.AudioContent:
		return "audio"
	case map[string]any:
		if t, ok := c["type"].(string); ok && t != "" {
			return text.Clip(t, 40)
		}
	case []mcp.Content:
		if len(c) > 0 {
			return contentKind(c[0])
		}
		return "empty"
	case nil:
		return "no"
	}
	return fmt.Sprintf("%T", content)
}

func finishReason(stop string) string {
	switch stop {
	case "maxTokens":
		return "length"
	case "stopSequence", "endTurn", "":
		return "stop"
	}
	return stop
}

// estimateTokens approximates a token count (about four characters per
// token): sampling results carry no usage.
func estimateTokens(s string) int64 {
	return int64((len(s) + 3) / 4)
}
