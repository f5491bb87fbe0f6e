package redisserver

import (
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
)

func TestTLS(t *testing.T) {
	if !TLSSupported() {
		t.Skip("the installed redis-server was built without TLS support")
	}
	leakcheck.Check(t)
	s := StartT(t, Options{TLS: true, Password: "pw"})
	if got, err := s.Do("PING"); err != nil || got != "PONG" {
		t.Fatalf("PING over TLS = %q, %v; want PONG", got, err)
	}
	certs := s.ClientCerts()
	if certs.CAFile == "" || certs.CertFile == "" || certs.KeyFile == "" {
		t.Fatalf("ClientCerts = %+v; want all paths set", certs)
	}
	if s.TLSConfig() == nil {
		t.Fatal("TLSConfig() = nil with TLS")
	}
	// Plain TCP to the TLS port gets no PONG.
	plain := dialer{addr: s.Addr(), password: "pw", timeout: time.Second}
	if got, err := plain.do("PING"); err == nil {
		t.Fatalf("plain-text PING on the TLS port = %q; want an error", got)
	}
	// tls-auth-clients yes (the default): no client certificate, no service.
	noCert := s.TLSConfig()
	noCert.Certificates = nil
	d := dialer{addr: s.Addr(), tls: noCert, password: "pw", timeout: time.Second}
	if got, err := d.do("PING"); err == nil {
		t.Fatalf("PING without client cert = %q; want an error", got)
	}
}

func TestTLSOptionalClientCert(t *testing.T) {
	if !TLSSupported() {
		t.Skip("the installed redis-server was built without TLS support")
	}
	leakcheck.Check(t)
	s := StartT(t, Options{TLS: true, TLSAuthClients: "optional"})
	conf := s.TLSConfig()
	conf.Certificates = nil
	d := dialer{addr: s.Addr(), tls: conf, timeout: 2 * time.Second}
	if got, err := d.do("PING"); err != nil || got != "PONG" {
		t.Fatalf("PING without client cert (optional) = %q, %v; want PONG", got, err)
	}
	// The client config from the files verifies the server by IP too.
	ipConf := s.TLSConfig()
	ipConf.ServerName = ""
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", s.Addr(), ipConf)
	if err != nil {
		t.Fatalf("TLS dial by IP: %v", err)
	}
	c.Close()
}

func TestTLSClusterAndSentinel(t *testing.T) {
	if !TLSSupported() {
		t.Skip("the installed redis-server was built without TLS support")
	}
	leakcheck.Check(t)
	c := StartClusterT(t, ClusterOptions{Masters: 3, Node: Options{TLS: true, Password: "pw"}})
	m, err := c.MasterForKey("k")
	if err != nil {
		t.Fatalf("MasterForKey over TLS: %v", err)
	}
	if got, err := m.Do("SET", "k", "v"); err != nil || got != "OK" {
		t.Fatalf("SET over TLS = %q, %v; want OK", got, err)
	}
	if m.ClientCerts().CAFile != c.Node(0).ClientCerts().CAFile {
		t.Fatal("cluster nodes do not share one CA")
	}

	st := StartSentinelT(t, SentinelOptions{Replicas: 1, Sentinels: 1, Node: Options{TLS: true}})
	addr, err := st.Master()
	if err != nil || addr != st.Servers()[0].Addr() {
		t.Fatalf("TLS sentinel Master = %q, %v; want %s", addr, err, st.Servers()[0].Addr())
	}
}
