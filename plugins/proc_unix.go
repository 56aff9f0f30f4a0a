//go:build linux

package plugins

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"github.com/ponder-rlm/ponder/tools/reap"
)

// isolation is how a plugin is kept together with the processes it starts.
type isolation int

const (
	// isolateGroup: a process group of its own. A process that leaves it
	// (setsid, a daemon's double fork) outlives the plugin.
	isolateGroup isolation = iota
	// isolatePID: a PID namespace of its own, whose init the plugin is.
	// When the init of a PID namespace exits, however it exits, the kernel
	// kills every other process in the namespace, and no process can leave
	// its namespace: setsid children go with the plugin. Needs
	// CAP_SYS_ADMIN (Ponder runs as root).
	isolatePID
	// isolateUserPID: the same for an unprivileged Ponder, inside a user
	// namespace that maps only Ponder's own user and group, so the plugin
	// runs as Ponder's user, with no more rights than Ponder's.
	isolateUserPID
)

func (i isolation) String() string {
	switch i {
	case isolatePID:
		return "pid namespace"
	case isolateUserPID:
		return "user and pid namespace"
	}
	return "process group"
}

// pluginIsolation is the strongest isolation this host lets Ponder use,
// found once by probeIsolation; the error says why the namespaces could
// not be used (isolateGroup).
var pluginIsolation = sync.OnceValues(probeIsolation)

// probeIsolation picks the first namespace setting this host allows
// (allowed).
func probeIsolation() (isolation, error) {
	var errs []error
	for _, iso := range []isolation{isolatePID, isolateUserPID} {
		err := allowed(iso)
		if err == nil {
			return iso, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", iso, err))
	}
	return isolateGroup, errors.Join(errs...)
}

// allowed tries iso with a process that execs a path that does not exist:
// clone failing (EPERM without the capability, EINVAL or ENOSPC where
// namespaces are off or used up, a seccomp filter) fails the fork, while
// a fork that worked fails the exec with ENOENT, which gives nil. Nothing
// runs and nothing is left behind (ForkExec reaps the child).
func allowed(iso isolation) error {
	_, err := syscall.ForkExec("/nonexistent/ponder-namespace-probe", nil,
		&syscall.ProcAttr{Sys: procAttr(iso)})
	if errors.Is(err, syscall.ENOENT) {
		return nil
	}
	return err
}

// childProcAttr makes the kernel kill a plugin when Ponder dies, even by
// SIGKILL, so no plugin outlives its host; puts the plugin in a process
// group of its own (killGroup) and, where the host allows it, in a PID
// namespace of its own, so that every process it starts, setsid ones
// included, dies with it. The error says why there is no namespace.
func childProcAttr() (*syscall.SysProcAttr, error) {
	iso, err := pluginIsolation()
	return procAttr(iso), err
}

func procAttr(iso isolation) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	switch iso {
	case isolatePID:
		a.Cloneflags = syscall.CLONE_NEWPID
	case isolateUserPID:
		a.Cloneflags = syscall.CLONE_NEWUSER | syscall.CLONE_NEWPID
		// Only the ids Ponder runs as: files keep their owners, and the
		// plugin gains no capability outside the namespace (nor inside,
		// once it execs as a user other than the namespace's root).
		a.UidMappings = []syscall.SysProcIDMap{{ContainerID: os.Geteuid(), HostID: os.Geteuid(), Size: 1}}
		a.GidMappings = []syscall.SysProcIDMap{{ContainerID: os.Getegid(), HostID: os.Getegid(), Size: 1}}
	}
	return a
}

func killNow(pid int) { _ = syscall.Kill(pid, syscall.SIGKILL) }

// killGroup kills what is left of the process group the plugin pid
// leads: the processes it started, which outlive it otherwise where there
// is no PID namespace. The group id stays taken while any of them runs,
// so it names no other group.
func killGroup(pid int) {
	if pid > 0 {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
}

// reapGroup waits, in the background, for the processes of the plugin
// pid's group that were re-parented to Ponder: when Ponder is PID 1 (a
// container's entrypoint) or a subreaper, a plugin's children outlive it
// by the moment killGroup takes to kill them, and each stayed a zombie
// counted against the uid's process limit, at every crash, restart and
// stop. Call it once the plugin itself was waited for (go-plugin's Kill
// returned), after killGroup: waiting earlier could take the plugin's
// exit from go-plugin. In a PID namespace the plugin, its init, waits for
// them instead, and this finds nothing to wait for.
func reapGroup(pid int) { reap.Group(pid) }
