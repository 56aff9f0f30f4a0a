package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"math"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/internal/endpoint"
	"github.com/ponder-rlm/ponder/internal/text"
)

const (
	backoffBase   = 500 * time.Millisecond
	backoffCap    = 30 * time.Second
	maxRetryAfter = 5 * time.Minute // Ponder waits at most this long, whatever Retry-After asks
	maxRedirects  = 10

	// defaultMaxResponseBytes bounds the body of one response, so that a
	// broken or hostile server cannot exhaust memory; n=64 samples of 8k
	// tokens with logprobs take well under half of it.
	defaultMaxResponseBytes = 64 << 20
)

// errTooLarge is the error a response body gives past its limit.
var errTooLarge = errors.New("response body too large")

// attempt is what one try learns from the transport: go-openai's errors do
// not carry response headers, so the transport records them here. It also
// carries fields to set in the JSON body that go-openai cannot express.
type attempt struct {
	patch  map[string]any
	status int
	// retryAfter is the wait the response's Retry-After asked for, not
	// cut to maxRetryAfter: messages say what was asked, and a server
	// passes it on to its clients.
	retryAfter    time.Duration
	hasRetryAfter bool
	// mediaType is the response's Content-Type without parameters.
	mediaType string
	// bodyErr is the first error reading the response body gave other than
	// io.EOF: the connection broke mid-answer, or errTooLarge.
	bodyErr error
	// head is the start of the response body (headBytes at most), for
	// messages about a successful answer that holds none.
	head []byte
	// keep asks for the whole body in raw: a chat answer is read again
	// for the fields go-openai drops (addReasoning).
	keep bool
	raw  []byte
}

// attemptOf is the attempt do made for the try ctx belongs to (nil
// outside do).
func attemptOf(ctx context.Context) *attempt {
	a, _ := ctx.Value(attemptKey{}).(*attempt)
	return a
}

// headBytes bounds attempt.head.
const headBytes = 4 << 10

// redirectError is a redirect the client does not follow (why says
// which):
//   - redirectElsewhere: one that would change the request's method (Go
//     resends a POST answered 301, 302 or 303 as a GET without its body,
//     which servers answer 405 or 404) or its origin (another host, or
//     https to http; Go would drop the API key there, and the prompts
//     would go to a host nobody configured);
//   - redirectLoop, redirectTooMany: a chain of redirects that leads back
//     to an address already asked, or goes on past maxRedirects. Go's own
//     limit gives a plain error that read as a network error and was
//     retried max_retries times, each try running the whole chain again;
//     a misconfigured server or proxy does not mend between tries.
type redirectError struct {
	status   int
	why      redirectWhy
	location string // the URL without its password, for the log
}

type redirectWhy int

const (
	redirectElsewhere redirectWhy = iota
	redirectLoop
	redirectTooMany
)

func (e *redirectError) Error() string {
	switch e.why {
	case redirectLoop:
		return fmt.Sprintf("redirect (%d) loop", e.status)
	case redirectTooMany:
		return fmt.Sprintf("more than %d redirects", maxRedirects)
	}
	return fmt.Sprintf("redirect (%d) not followed", e.status)
}

// checkRedirect is the http.Client's CheckRedirect: it follows redirects
// that keep the method and the origin (307 and 308 to another path of the
// same server), at most maxRedirects of them, and none back to an address
// already asked.
func checkRedirect(req *http.Request, via []*http.Request) error {
	first := via[0]
	status := 0
	if req.Response != nil {
		status = req.Response.StatusCode
	}
	if req.Method != first.Method || req.URL.Scheme != first.URL.Scheme || req.URL.Host != first.URL.Host {
		return &redirectError{status: status, why: redirectElsewhere, location: req.URL.Redacted()}
	}
	for _, prev := range via {
		if prev.URL.String() == req.URL.String() {
			return &redirectError{status: status, why: redirectLoop, location: req.URL.Redacted()}
		}
	}
	if len(via) >= maxRedirects {
		return &redirectError{status: status, why: redirectTooMany, location: req.URL.Redacted()}
	}
	return nil
}

// errNoChoices is an answer (2xx, valid json) without choices.
var errNoChoices = errors.New("answer without choices")

type attemptKey struct{}

// transport records the status and Retry-After of each response in the
// request's attempt, applies the attempt's body patch, and bounds the
// response body to max bytes.
type transport struct {
	base http.RoundTripper
	max  int64
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	a := attemptOf(req.Context())
	if a == nil {
		return t.base.RoundTrip(req)
	}
	if len(a.patch) > 0 && req.Body != nil && req.Body != http.NoBody {
		patched, err := patchBody(req, a.patch)
		if err != nil {
			return nil, err
		}
		req = patched
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	a.status = resp.StatusCode
	a.retryAfter, a.hasRetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	a.mediaType, _, _ = mime.ParseMediaType(resp.Header.Get("Content-Type"))
	resp.Body = &body{rc: resp.Body, a: a, left: t.max}
	return resp, nil
}

// body is a response body that gives errTooLarge past its limit and
// records read errors in its attempt.
type body struct {
	rc   io.ReadCloser
	a    *attempt
	left int64
}

func (b *body) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if b.left <= 0 {
		// At the limit: the body may end here; one more byte says it does not.
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n == 0 && err != nil {
			return 0, b.fail(err)
		}
		return 0, b.fail(errTooLarge)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if room := headBytes - len(b.a.head); room > 0 {
		b.a.head = append(b.a.head, p[:min(n, room)]...)
	}
	if b.a.keep {
		b.a.raw = append(b.a.raw, p[:n]...)
	}
	return n, b.fail(err)
}

// fail records err unless it is nil or io.EOF, and returns it.
func (b *body) fail(err error) error {
	if err != nil && err != io.EOF && b.a.bodyErr == nil {
		b.a.bodyErr = err
	}
	return err
}

func (b *body) Close() error { return b.rc.Close() }

// patchBody returns a copy of req whose JSON object body has the fields of
// patch set.
func patchBody(req *http.Request, patch map[string]any) (*http.Request, error) {
	b, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil {
		return nil, fmt.Errorf("patch request body: %w", err)
	}
	for k, v := range patch {
		body[k] = v
	}
	if b, err = json.Marshal(body); err != nil {
		return nil, fmt.Errorf("patch request body: %w", err)
	}
	out := req.Clone(req.Context())
	out.Body = io.NopCloser(bytes.NewReader(b))
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	out.ContentLength = int64(len(b))
	return out, nil
}

// parseRetryAfter reads a Retry-After value: delay seconds or an HTTP
// date. The wait is what the endpoint asked for (up to the longest
// time.Duration); do cuts it to maxRetryAfter.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		switch {
		case s < 0 || math.IsNaN(s):
			return 0, false
		case s >= math.MaxInt64/float64(time.Second):
			return math.MaxInt64, true
		}
		return time.Duration(s * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// backoff is the wait before retry i (0-based): exponential with full
// jitter.
func backoff(i int) time.Duration {
	ceil := backoffCap
	if i < 16 {
		ceil = min(backoffBase<<i, backoffCap)
	}
	return rand.N(ceil + 1)
}

// do runs fn until it succeeds, fails for good, or ctx is done, retrying
// retryable failures up to cfg.MaxRetries times. Each try gets cfg.Timeout.
func (c *Client) do(ctx context.Context, op, model string, patch map[string]any, fn func(ctx context.Context) error) error {
	for i := 0; ; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		a := &attempt{patch: patch}
		actx := context.WithValue(ctx, attemptKey{}, a)
		cancel := context.CancelFunc(func() {})
		if c.cfg.Timeout > 0 {
			actx, cancel = context.WithTimeout(actx, c.cfg.Timeout)
		}
		start := time.Now()
		err := fn(actx)
		timedOut := err != nil && errors.Is(actx.Err(), context.DeadlineExceeded)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d := backoff(i)
		if a.hasRetryAfter {
			d = min(a.retryAfter, maxRetryAfter)
		}
		dl, hasDeadline := ctx.Deadline()
		late := hasDeadline && time.Until(dl) < d
		retry, ferr := c.classify(err, a, timedOut, i+1, model, late && i < c.cfg.MaxRetries)
		ev := c.log.Debug().Str("op", op).Str("endpoint", c.ep.URL()).Str("model", model).Int("attempt", i+1).Int("status", a.status).
			Dur("latency", time.Since(start)).Str("error", ferr.Error())
		if a.hasRetryAfter {
			ev.Dur("retry_after", a.retryAfter)
		}
		if redir := (*redirectError)(nil); errors.As(err, &redir) {
			ev.Str("location", redir.location)
		}
		if !retry || i >= c.cfg.MaxRetries {
			ev.Msg("llm request failed")
			return ferr
		}
		if late {
			ev.Dur("backoff", d).Msg("llm request failed; the next try would start after the deadline")
			return ferr
		}
		ev.Dur("backoff", d).Msg("llm request failed; retrying")
		if err := c.sleep(ctx, d); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
	}
}

// endpointName is how messages name the LLM endpoint. Not its URL: these
// messages reach the clients of `ponder serve` (OpenAI error bodies, MCP
// tool results, streamed notes) and every trace, and the endpoint may be
// internal infrastructure they should not learn of. The URL goes to the
// log (the "endpoint" field), and `ponder solve` adds it to its own
// message.
const endpointName = "the LLM endpoint"

// classify says whether err is worth another try and turns it into the
// error to return when no try is left: one line, wrapping a core sentinel,
// saying what failed and why and what to change, and never holding the
// API key or the endpoint's address.
//
// late says that a retry would start after ctx's deadline, so that none is
// made although retries are left: a rate limit then says how long the
// endpoint asked to wait rather than to allow more retries.
func (c *Client) classify(err error, a *attempt, timedOut bool, attempts int, model string, late bool) (retry bool, _ error) {
	if timedOut {
		// No cause: the caller's own deadline did not pass, and errors.Is
		// must not say it did.
		return true, newError(core.ErrLLMUnavailable, nil,
			"%s did not answer within %s (%s): raise PONDER_LLM_TIMEOUT or check the server's load",
			endpointName, c.cfg.Timeout, text.Count(attempts, "attempt"))
	}
	if errors.Is(a.bodyErr, errTooLarge) {
		return false, newError(core.ErrLLMBadResponse, nil,
			"%s sent an answer larger than %s (status %d): check the server's logs, PONDER_LLM_MAX_TOKENS and that PONDER_LLM_BASE_URL points at an openai-compatible api",
			endpointName, byteSize(c.maxBody), a.status)
	}
	if a.bodyErr != nil {
		// The connection broke mid-answer (a short body, a reset): the
		// answer is lost, not malformed, and another try may get it.
		return true, newError(core.ErrLLMUnavailable, err,
			"%s answered %d but the answer was cut off (%s, %s): check the server's logs and the network",
			endpointName, a.status, c.ep.Clean(endpoint.NetText(a.bodyErr)), text.Count(attempts, "attempt"))
	}
	if errors.Is(err, errNoChoices) {
		// Some servers and proxies answer 200 with {"error": ...}.
		var detail string
		if len(a.head) < headBytes {
			var v struct {
				Error json.RawMessage `json:"error"`
			}
			if json.Unmarshal(a.head, &v) == nil && len(v.Error) > 0 && string(v.Error) != "null" {
				detail = c.detail(endpoint.BodyMessage(a.head))
			}
		}
		return false, newError(core.ErrLLMBadResponse, nil,
			"%s sent an answer without choices%s: check the server's logs and that PONDER_LLM_BASE_URL points at an openai-compatible api",
			endpointName, detail)
	}
	if status, msg, ok := httpError(err); ok {
		if status == 0 {
			status = a.status
		}
		if page, ok := htmlPage(a.mediaType, msg); ok {
			msg = page
		}
		detail := c.detail(msg)
		switch {
		case status == http.StatusUnauthorized || status == http.StatusForbidden:
			return false, newError(core.ErrLLMAuth, err, "%s answered %d%s: check PONDER_LLM_API_KEY", endpointName, status, detail)
		case status == http.StatusTooManyRequests:
			format := "%s answered 429 after %s%s: lower PONDER_LLM_CONCURRENCY or raise PONDER_LLM_MAX_RETRIES"
			args := []any{endpointName, text.Count(attempts, "attempt"), detail}
			switch {
			case late && a.hasRetryAfter:
				format = "%s answered 429 after %s%s and asked to wait %s, past the deadline of the search or request: lower PONDER_LLM_CONCURRENCY or try again later"
				args = append(args, askedWait(a.retryAfter))
			case a.hasRetryAfter && a.retryAfter > maxRetryAfter:
				// Retrying sooner than asked is why the retries ran out:
				// more of them would not help.
				format = "%s answered 429 after %s%s and asked to wait %s: lower PONDER_LLM_CONCURRENCY or try again later"
				args = append(args, askedWait(a.retryAfter))
			case late:
				format = "%s answered 429 after %s%s, with no time left before the deadline of the search or request to try again: lower PONDER_LLM_CONCURRENCY"
			}
			e := newError(core.ErrLLMRateLimited, err, format, args...).(*llmError)
			if a.hasRetryAfter {
				e.retryAfter = a.retryAfter
			}
			return true, e
		case status == http.StatusRequestTimeout || status >= 500:
			var asked string
			if a.hasRetryAfter && a.retryAfter > maxRetryAfter {
				// A server down for maintenance says for how long.
				asked = " and asked to wait " + askedWait(a.retryAfter)
			}
			return true, newError(core.ErrLLMUnavailable, err, "%s answered %d after %s%s%s: check the server's logs",
				endpointName, status, text.Count(attempts, "attempt"), detail, asked)
		case status == http.StatusNotFound:
			return false, newError(core.ErrLLMUnavailable, err,
				"%s answered 404%s: check that PONDER_LLM_BASE_URL includes the api prefix (such as /v1) and PONDER_LLM_MODEL names a served model",
				endpointName, detail)
		default:
			return false, newError(core.ErrLLMRejected, err, "%s answered %d%s: check the model and the request settings",
				endpointName, status, detail)
		}
	}
	var redir *redirectError
	if errors.As(err, &redir) {
		switch redir.why {
		case redirectLoop:
			return false, newError(core.ErrLLMUnavailable, nil,
				"%s answered %d, a redirect back to an address it had already redirected from (a redirect loop): check the server's or proxy's configuration and that PONDER_LLM_BASE_URL is the api's own address",
				endpointName, redir.status)
		case redirectTooMany:
			return false, newError(core.ErrLLMUnavailable, nil,
				"%s redirected the request more than %d times: check the server's or proxy's configuration and that PONDER_LLM_BASE_URL is the api's own address (the debug log has where the redirects led)",
				endpointName, maxRedirects)
		}
		return false, newError(core.ErrLLMUnavailable, nil,
			"%s answered %d, a redirect to another address that Ponder does not follow (the request would arrive as a GET or at another host): set PONDER_LLM_BASE_URL to the address it redirects to (the debug log has it)",
			endpointName, redir.status)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return !dnsErr.IsNotFound, newError(core.ErrLLMUnavailable, err,
			"cannot resolve the host of %s: fix PONDER_LLM_BASE_URL or --llm-url", endpointName)
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return true, newError(core.ErrLLMUnavailable, err,
			"cannot connect to %s (connection refused, %s): start the server or fix PONDER_LLM_BASE_URL or --llm-url",
			endpointName, text.Count(attempts, "attempt"))
	}
	var urlErr *url.Error
	var netErr net.Error
	if errors.As(err, &urlErr) || errors.As(err, &netErr) || errors.Is(err, syscall.ECONNRESET) {
		return true, newError(core.ErrLLMUnavailable, err, "request to %s failed (%s): %s: check the server and PONDER_LLM_BASE_URL",
			endpointName, text.Count(attempts, "attempt"), c.ep.Clean(endpoint.NetText(err)))
	}
	if a.status >= 200 && a.status < 300 {
		// A web server's or proxy's page (a login or welcome page where
		// the api was expected), or a stream a proxy forced on a request
		// that asked for one answer: say what came, not which byte of it
		// is not json.
		if page, ok := htmlPage(a.mediaType, string(a.head)); ok {
			return false, newError(core.ErrLLMBadResponse, nil,
				"%s sent %s, not json: check that PONDER_LLM_BASE_URL points at an openai-compatible api (with its prefix, such as /v1) and not at a web page or a proxy's login",
				endpointName, c.ep.Clean(page))
		}
		if a.mediaType == "text/event-stream" || bytes.HasPrefix(bytes.TrimSpace(a.head), []byte("data:")) {
			return false, newError(core.ErrLLMBadResponse, nil,
				"%s sent an event stream (server-sent events), not the single json answer asked for: check that no proxy in between turns requests into streams and that PONDER_LLM_BASE_URL points at an openai-compatible api",
				endpointName)
		}
		if typeErr := (*json.UnmarshalTypeError)(nil); errors.As(err, &typeErr) {
			// Valid json of another shape (a count as a string, a
			// field of another type).
			return false, newError(core.ErrLLMBadResponse, err,
				"%s sent json that is not a chat completion (%s): check that PONDER_LLM_BASE_URL points at an openai-compatible api",
				endpointName, c.ep.Clean(err.Error()))
		}
		return false, newError(core.ErrLLMBadResponse, err,
			"%s sent an answer that is not valid json (%s): check that PONDER_LLM_BASE_URL points at an openai-compatible api",
			endpointName, c.ep.Clean(err.Error()))
	}
	// Refused before sending (go-openai's checks of the model's parameters).
	return false, newError(nil, err, "llm request is invalid for model %q: %s: check the model and the request settings",
		model, c.ep.Clean(err.Error()))
}

// rejectsRequest reports whether err is the server refusing the request as
// invalid (400, 422), as servers that do not support n > 1 do.
func rejectsRequest(err error) bool {
	status, _, ok := httpError(err)
	return ok && (status == http.StatusBadRequest || status == http.StatusUnprocessableEntity)
}

// httpError finds the status and message of an error response.
func httpError(err error) (status int, msg string, ok bool) {
	var reqErr *openai.RequestError
	if errors.As(err, &reqErr) {
		return reqErr.HTTPStatusCode, endpoint.BodyMessage(reqErr.Body), true
	}
	var apiErr *openai.APIError
	if errors.As(err, &apiErr) {
		return apiErr.HTTPStatusCode, apiErr.Message, true
	}
	return 0, "", false
}

// htmlTitle finds an HTML page's title.
var htmlTitle = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)

// htmlPage describes body as "an HTML page" with its title, when the
// response said it is HTML or body looks like a page.
func htmlPage(mediaType, body string) (string, bool) {
	start := strings.ToLower(strings.TrimSpace(body))
	if mediaType != "text/html" && mediaType != "application/xhtml+xml" &&
		!strings.HasPrefix(start, "<!doctype html") && !strings.HasPrefix(start, "<html") {
		return "", false
	}
	m := htmlTitle.FindStringSubmatch(body)
	if m == nil {
		return "an HTML page", true
	}
	title := strings.Join(strings.Fields(html.UnescapeString(m[1])), " ")
	if title == "" {
		return "an HTML page", true
	}
	return fmt.Sprintf("an HTML page, %q", title), true
}

// detail is ep.Clean(s) in parentheses after a space, or "" when s is empty.
func (c *Client) detail(s string) string {
	if s = c.ep.Clean(s); s == "" {
		return ""
	}
	return " (" + s + ")"
}

// askedWait says how long the endpoint asked to wait, and that Ponder
// waits less when it asked for more than maxRetryAfter.
func askedWait(d time.Duration) string {
	if d > maxRetryAfter {
		return fmt.Sprintf("%s (Ponder waits %s at most)", roundWait(d), maxRetryAfter)
	}
	return roundWait(d).String()
}

// roundWait is d to the second when it is one or more (an HTTP date's
// wait is a second less a fraction).
func roundWait(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(time.Second)
	}
	return d
}

// byteSize writes n bytes in MiB when it is a whole number of them.
func byteSize(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return strconv.FormatInt(n>>20, 10) + " MiB"
	}
	return text.Count(int(n), "byte")
}

// llmError is a classified failure: its own one-line message, unwrapping
// to a core sentinel and to the underlying error.
type llmError struct {
	msg  string
	errs []error
	// retryAfter is the endpoint's Retry-After on its last answer (a 429),
	// as asked (not cut to the wait Ponder takes), 0 when it sent none.
	retryAfter time.Duration
}

func (e *llmError) Error() string   { return e.msg }
func (e *llmError) Unwrap() []error { return e.errs }

// RetryAfter is how long the endpoint asked to wait before trying again,
// when it rate limited the request and said so (0 otherwise): a server
// passes it on to its own clients.
func (e *llmError) RetryAfter() time.Duration { return e.retryAfter }

// HTTPStatus is the status of the endpoint's answer that failed the
// request (404 for a model it does not serve), 0 when no answer came (a
// refused connection, a timeout): a server tells its own clients' mistakes
// from the endpoint's failures by it, without the HTTP client library's
// error types.
func (e *llmError) HTTPStatus() int {
	for _, c := range e.errs {
		if status, _, ok := httpError(c); ok {
			return status
		}
	}
	return 0
}

func newError(sentinel, cause error, format string, args ...any) error {
	e := &llmError{msg: fmt.Sprintf(format, args...)}
	if sentinel != nil {
		e.msg = sentinel.Error() + ": " + e.msg
		e.errs = append(e.errs, sentinel)
	}
	if cause != nil {
		e.errs = append(e.errs, cause)
	}
	return e
}
