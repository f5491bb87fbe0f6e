//go:build !linux

package redisserver

import "os/exec"

func setProcAttr(cmd *exec.Cmd) {}
