package redis

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/halilbulentorhon/invacache-go/config"
)

// Refusals that only a configuration change fixes. The error that reports
// one wraps it and config.ErrInvalidConfig, so NewCache fails with it at
// once when it comes before the first link-up, instead of returning a cache
// that never serves. Later (a password rotated under a running cache) it is
// a link down like any other, retried with backoff.
var (
	// ErrAuth: Redis refused the credentials (WRONGPASS: a wrong password
	// or an ACL user that does not exist or is disabled; NOAUTH: a password
	// is required and none is set; AUTH without a password configured).
	ErrAuth = errors.New("redis: authentication refused")
	// ErrTLS: the TLS handshake failed (TLS against a plain server, a
	// certificate the configured CA does not sign, a name mismatch, a
	// client certificate the server rejects).
	ErrTLS = errors.New("redis: TLS handshake failed")
)

// doorRefusal returns err wrapped with ErrAuth or ErrTLS and
// config.ErrInvalidConfig when it is such a refusal, else err unchanged.
// A refused dial, a timeout or a reset may pass: they are not refusals.
func doorRefusal(err error) error {
	if err == nil {
		return nil
	}
	var kind error
	var re goredis.Error
	if errors.As(err, &re) {
		msg := re.Error()
		if strings.HasPrefix(msg, "WRONGPASS") || strings.HasPrefix(msg, "NOAUTH") ||
			strings.Contains(msg, "without any password configured") {
			kind = ErrAuth
		}
	}
	var (
		hdr     tls.RecordHeaderError
		verify  *tls.CertificateVerificationError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
		alert   tls.AlertError
	)
	switch {
	case kind != nil:
	case errors.As(err, &hdr), errors.As(err, &verify), errors.As(err, &unknown), errors.As(err, &host),
		errors.As(err, &invalid), errors.As(err, &alert), strings.Contains(err.Error(), "remote error: tls: "):
		kind = ErrTLS
	default:
		return err
	}
	return fmt.Errorf("%w: %w (%w)", kind, err, config.ErrInvalidConfig)
}
