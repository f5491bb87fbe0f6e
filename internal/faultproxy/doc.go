// Package faultproxy is a fault-injecting TCP proxy for tests and for the
// `invacache chaos` command. A Proxy listens on a loopback port and forwards
// each connection to a target (e.g. a redis-server from package
// redisserver); clients connect to Proxy.Addr instead of the target.
//
// Faults:
//   - Cut: reset every current connection (clients see errors at once).
//   - Blackhole: a partition; bytes stop in both directions and nothing is
//     closed, so only client timeouts notice. Heal ends it and resets the
//     connections held during it.
//   - Refuse/Accept: new connections are reset at once, like a server down.
//   - SetTarget: send new connections elsewhere (a server restarted on
//     another port).
//   - SetLatency: delay each forwarded chunk.
//
// Close stops every goroutine the proxy started before returning. The
// package depends on the standard library only.
package faultproxy
