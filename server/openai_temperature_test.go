package server

import (
	"encoding/json"
	"strings"
	"testing"
)

// The request's temperature is the strategy's temperature, as an OpenAI
// client means it: n choices of cot (temperature 0 by default) were n
// copies of one answer whatever temperature the client asked for.
func TestChatTemperatureIsTheStrategys(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	url := e.ts.URL + "/v1/chat/completions"
	temps := func(body string) []any {
		t.Helper()
		out := postJSON(t, url, body, 200)
		var resp struct {
			Ponder struct {
				Choices []struct {
					TraceID string `json:"trace_id"`
				} `json:"choices"`
			} `json:"ponder"`
		}
		if err := json.Unmarshal([]byte(out), &resp); err != nil || len(resp.Ponder.Choices) == 0 {
			t.Fatalf("%v: %s", err, out)
		}
		var got []any
		for _, c := range resp.Ponder.Choices {
			tr, err := e.traces.Get(c.TraceID)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, tr.Params["temperature"])
		}
		return got
	}
	const q = `"messages":[{"role":"user","content":"What is 17 * 23?"}]`
	for _, c := range []struct {
		name, body string
		want       any
	}{
		{"the request's", `{"model":"cot","n":2,"temperature":0.9,` + q + `}`, 0.9},
		{"the strategy's default without one", `{"model":"cot",` + q + `}`, 0.0},
		{"ponder.params wins", `{"model":"cot","temperature":0.9,` + q + `,"ponder":{"params":{"temperature":0.3}}}`, 0.3},
		{"the default strategy's", `{"model":"ponder-sim","temperature":1.2,` + q + `}`, 1.2},
	} {
		for _, got := range temps(c.body) {
			if f, _ := got.(float64); f != c.want {
				t.Errorf("%s: the search ran at temperature %v, want %v", c.name, got, c.want)
			}
		}
	}
	// Out of the strategy's range: OpenAI's 400 naming the field.
	body := postJSON(t, url, `{"model":"cot","temperature":3,`+q+`}`, 400)
	if !strings.Contains(body, `"param":"temperature"`) || !strings.Contains(body, "at most 2") {
		t.Errorf("temperature 3: %s", body)
	}
	// A strategy without the parameter ignores it, as before.
	postJSON(t, url, `{"model":"best-of-n","temperature":0.5,`+q+`,"ponder":{"params":{"n":2}}}`, 200)
}
