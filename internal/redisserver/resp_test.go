package redisserver

import (
	"bufio"
	"errors"
	"strings"
	"testing"
)

func TestReadTree(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr error
	}{
		{"+OK\r\n", "OK", nil},
		{":42\r\n", "42", nil},
		{"$3\r\nfoo\r\n", "foo", nil},
		{"$0\r\n\r\n", "", nil},
		{"$-1\r\n", "", ErrNil},
		{"*-1\r\n", "", ErrNil},
		{"*2\r\n$1\r\na\r\n:1\r\n", "a\n1", nil},
		{"*2\r\n*1\r\n+x\r\n$-1\r\n", "x\n", nil},
		{"*1\r\n-ERR inner\r\n", "ERR inner", nil},
	}
	for _, tt := range tests {
		got, err := flat(readTree(bufio.NewReader(strings.NewReader(tt.in))))
		if got != tt.want || !errors.Is(err, tt.wantErr) {
			t.Errorf("readTree(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
	var re *ReplyError
	if _, err := readTree(bufio.NewReader(strings.NewReader("-NOAUTH x\r\n"))); !errors.As(err, &re) || re.Msg != "NOAUTH x" {
		t.Errorf("error reply err = %v; want *ReplyError NOAUTH x", err)
	}
	for _, bad := range []string{"", "\r\n", "?x\r\n", "$x\r\n", "$5\r\nab", "*x\r\n", "*2\r\n+a\r\n"} {
		if _, err := flat(readTree(bufio.NewReader(strings.NewReader(bad)))); err == nil {
			t.Errorf("readTree(%q) err = nil; want an error", bad)
		}
	}
}

// FuzzReadTree: arbitrary bytes never panic or allocate by a bogus length.
func FuzzReadTree(f *testing.F) {
	for _, s := range []string{"+OK\r\n", "$3\r\nfoo\r\n", "*2\r\n:1\r\n$-1\r\n", "-ERR x\r\n", "$999999999999\r\n", "*999999999999\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = readTree(bufio.NewReader(strings.NewReader(string(data))))
	})
}

func TestEncodeCommand(t *testing.T) {
	got := string(encodeCommand([]string{"SET", "k", ""}))
	want := "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n"
	if got != want {
		t.Fatalf("encodeCommand = %q; want %q", got, want)
	}
}
