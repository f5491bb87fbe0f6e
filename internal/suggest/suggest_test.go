package suggest

import "testing"

func TestDidYouMean(t *testing.T) {
	names := []string{"address", "addresses", "channel", "dialTimeout", "db"}
	tests := []struct{ key, want string }{
		{"adress", ` (did you mean "address"?)`},
		{"Channel", ` (did you mean "channel"?)`},
		{"dialtimeot", ` (did you mean "dialTimeout"?)`},
		{"password", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := DidYouMean(tt.key, names); got != tt.want {
			t.Errorf("DidYouMean(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
}
