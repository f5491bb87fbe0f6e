//go:build !linux

package chaos

import "os/exec"

// setProcAttr is a no-op where there is no parent-death signal.
func setProcAttr(*exec.Cmd) {}
