package option_test

import (
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go/backend/option"
)

func TestApplyOptions(t *testing.T) {
	tests := []struct {
		name string
		opts []option.OptFnc
		want option.SetConfig
	}{
		{"none", nil, option.SetConfig{}},
		{"ttl", []option.OptFnc{option.WithTTL(time.Minute)}, option.SetConfig{TTL: time.Minute}},
		{"no expiration", []option.OptFnc{option.WithNoExpiration()}, option.SetConfig{NoExpiration: true}},
		{"last of ttl and no expiration wins", []option.OptFnc{option.WithNoExpiration(), option.WithTTL(time.Second)}, option.SetConfig{TTL: time.Second}},
		{"invalidation", []option.OptFnc{option.WithInvalidation(), option.WithTTL(time.Second)}, option.SetConfig{TTL: time.Second, PublishInvalidation: true}},
		{"nil option skipped", []option.OptFnc{nil, option.WithInvalidation()}, option.SetConfig{PublishInvalidation: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := option.ApplyOptions(tt.opts); got != tt.want {
				t.Errorf("ApplyOptions = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDeleteAndClearOptions(t *testing.T) {
	if got := option.ApplyDeleteOptions(nil); got.PublishInvalidation {
		t.Errorf("ApplyDeleteOptions(nil).PublishInvalidation = true, want false")
	}
	if got := option.ApplyDeleteOptions([]option.DelOptFnc{nil, option.WithDeleteInvalidation()}); !got.PublishInvalidation {
		t.Errorf("WithDeleteInvalidation: PublishInvalidation = false, want true")
	}
	if got := option.ApplyClearOptions(nil); got.PublishInvalidation {
		t.Errorf("ApplyClearOptions(nil).PublishInvalidation = true, want false")
	}
	if got := option.ApplyClearOptions([]option.ClrOptFnc{option.WithClearInvalidation()}); !got.PublishInvalidation {
		t.Errorf("WithClearInvalidation: PublishInvalidation = false, want true")
	}
}
