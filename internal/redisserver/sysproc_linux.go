package redisserver

import (
	"os/exec"
	"syscall"
)

// setProcAttr makes the kernel kill redis-server if the test binary dies
// without running Close (panic, timeout), so no orphan keeps a port.
// Linux sends it when the forking OS thread exits; Go keeps its threads
// unless a goroutine exits while locked to one, which this package never does.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
