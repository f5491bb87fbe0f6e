package testenv

import "syscall"

// procAttr makes the kernel stop the server if the test binary dies without
// running Close (a panic, a timeout), so no orphan keeps a port or a
// directory: SIGQUIT is PostgreSQL's immediate shutdown (its backends go
// too); redis-server gets SIGKILL. Linux sends it when the forking OS
// thread exits; Go keeps its threads unless a goroutine exits while locked
// to one, which this package never does.
func procAttr(cred *syscall.Credential, sig syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Pdeathsig: sig}
}
