package main

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go/backend/option"
	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
	"github.com/halilbulentorhon/invacache-go/internal/wire"
	"github.com/halilbulentorhon/invacache-go/invalidation"
)

// The monitor shows each logged payload's replay log position (epoch and
// stream id) in text and JSON, flags a change of epoch (the log was
// recreated) and a broken frame, and shows unlogged payloads without one.
func TestMonitorShowsLogPositions(t *testing.T) {
	leakcheck.Check(t)
	env, _, _ := wire.AppendBatches(nil, nil, 7, 1, false, []string{"a", "b"}, 1<<16)
	at := func(epoch string, ms uint64, payload []byte) []byte {
		return wire.AppendFrame(nil, invalidation.LogPos{Epoch: epoch, ID: invalidation.LogID{Ms: ms, Seq: 0}}, payload)
	}
	payloads := [][]byte{
		at("e1", 100, env[0]),            // a logged envelope
		at("e1", 101, []byte("user:1")),  // a logged raw key
		[]byte("user:2"),                 // an operator's unlogged raw key
		[]byte(wire.FrameMagic + "junk"), // a broken frame
		at("e2", 5, []byte("")),          // the log recreated: a logged raw clear
	}
	tests := []struct {
		asJSON bool
		want   []string // one per printed line, in order (regexps)
	}{
		{false, []string{
			`^\S+  log=e1/100-0 origin=0000000000000007 seq=1 v1 delete 2 key\(s\): a b$`,
			`^\S+  log=e1/101-0 RAW key "user:1"`,
			`^\S+  RAW key "user:2"`,
			`^\S+  MALFORMED \d+ bytes .*not a well-formed replay log frame`,
			`^\S+  log=e2/5-0 LOG RESET: epoch e2, was e1`,
			`^\S+  log=e2/5-0 RAW clear`,
		}},
		{true, []string{
			`"event":"message","log_epoch":"e1","log_id":"100-0","origin":"0000000000000007"`,
			`"event":"raw_key","log_epoch":"e1","log_id":"101-0","key":"user:1"`,
			`"event":"raw_key","key":"user:2"`,
			`"event":"malformed",.*"error":"not a well-formed replay log frame"`,
			`"event":"log_reset","log_epoch":"e2","log_id":"5-0","prev_log_epoch":"e1"`,
			`"event":"raw_clear","log_epoch":"e2","log_id":"5-0"`,
		}},
	}
	for _, tt := range tests {
		st := &monitorStats{origins: map[uint64]uint64{}}
		var b strings.Builder
		out := &monitorPrinter{w: &b, json: tt.asJSON, maxKeys: 10}
		for _, p := range payloads {
			monitorPayload(out, st, p, false)
		}
		lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
		if len(lines) != len(tt.want) {
			t.Fatalf("json=%v: %d lines, want %d:\n%s", tt.asJSON, len(lines), len(tt.want), b.String())
		}
		for i, w := range tt.want {
			if !regexp.MustCompile(w).MatchString(lines[i]) {
				t.Errorf("json=%v: line %d = %q, want it to match %q", tt.asJSON, i, lines[i], w)
			}
		}
		if st.logged != 3 || st.logResets != 1 || st.malformed != 1 || st.raw != 3 || st.envelopes != 1 {
			t.Errorf("json=%v: logged/resets/malformed/raw/envelopes = %d/%d/%d/%d/%d, want 3/1/1/3/1",
				tt.asJSON, st.logged, st.logResets, st.malformed, st.raw, st.envelopes)
		}
	}
}

// Against a real Redis: what a cache broadcasts through the Redis driver
// (which logs it) reaches `monitor --json` with its log position, and the
// text monitor prints it as log=EPOCH/ID.
func TestMonitorShowsLogIDsFromTheDriver(t *testing.T) {
	leakcheck.Check(t)
	ch := channelFor(t)
	node := newNode(t, ch)
	for _, asJSON := range []bool{true, false} {
		var out, errOut syncBuffer
		done := make(chan int, 1)
		args := []string{"monitor", "--redis", srv.Addr(), "--channel", ch, "--count", "1", "--duration", "20s"}
		if asJSON {
			args = append(args, "--json")
		}
		go func() { done <- run(args, &out, &errOut) }()
		waitFor(t, "the monitor to subscribe", 5*time.Second, func() bool { return strings.Contains(out.String(), "subscribed") })
		if err := node.Delete("user:1", option.WithDeleteInvalidation()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := node.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Fatalf("monitor: exit %d, stderr %q", code, errOut.String())
			}
		case <-time.After(20 * time.Second):
			t.Fatal("monitor did not stop after --count 1")
		}
		if !asJSON {
			if !regexp.MustCompile(`(?m)^\S+  log=[0-9a-f]+/\d+-\d+ origin=[0-9a-f]{16} seq=\d+ v1 delete 1 key\(s\): user:1$`).MatchString(out.String()) {
				t.Errorf("text monitor output lacks a message line with its log position:\n%s", out.String())
			}
			continue
		}
		var msg, summary map[string]any
		for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
			var ev map[string]any
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("line %q is not JSON: %v", line, err)
			}
			switch ev["event"] {
			case "message":
				msg = ev
			case "summary":
				summary = ev
			}
		}
		id, _ := msg["log_id"].(string)
		if epoch, _ := msg["log_epoch"].(string); epoch == "" || !regexp.MustCompile(`^\d+-\d+$`).MatchString(id) {
			t.Errorf("message event %v, want log_epoch and a stream id in log_id", msg)
		}
		if summary["logged"] != 1.0 || summary["log_resets"] != 0.0 {
			t.Errorf("summary %v, want logged 1, log_resets 0", summary)
		}
	}
}
