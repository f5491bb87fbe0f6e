package chaos

import (
	"os/exec"
	"syscall"
)

// setProcAttr makes the kernel kill a node process when the run dies
// without stopping it, so no orphan keeps writing.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
