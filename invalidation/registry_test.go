package invalidation_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/halilbulentorhon/invacache-go/invalidation"
)

func TestRegister(t *testing.T) {
	factory := func(invalidation.Spec) (invalidation.Driver, error) { return nil, errors.New("not built") }
	if err := invalidation.Register("registry-test", factory); err != nil {
		t.Fatalf("Register: %v", err)
	}
	tests := []struct {
		name    string
		regName string
		f       invalidation.Factory
	}{
		{"duplicate name", "registry-test", factory},
		{"empty name", "", factory},
		{"nil factory", "registry-test-nil", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := invalidation.Register(tt.regName, tt.f); err == nil {
				t.Errorf("Register(%q) = nil, want an error", tt.regName)
			}
		})
	}
	if got := invalidation.Registered(); !slices.Contains(got, "registry-test") || slices.Contains(got, "registry-test-nil") {
		t.Errorf("Registered() = %v, want registry-test and not registry-test-nil", got)
	}
}

func TestOpen(t *testing.T) {
	_, err := invalidation.Open(invalidation.Spec{Type: "no-such-driver"})
	if !errors.Is(err, invalidation.ErrUnknownDriver) {
		t.Errorf("Open(unknown) err = %v, want ErrUnknownDriver", err)
	}
	want := errors.New("factory saw the spec")
	invalidation.MustRegister("open-test", func(s invalidation.Spec) (invalidation.Driver, error) {
		if s.Type != "open-test" || s.Options["k"] != 1 {
			t.Errorf("factory got spec %+v, want Type open-test and Options[k]=1", s)
		}
		return nil, want
	})
	if _, err := invalidation.Open(invalidation.Spec{Type: "open-test", Options: map[string]any{"k": 1}}); !errors.Is(err, want) {
		t.Errorf("Open err = %v, want the factory's error", err)
	}
}
