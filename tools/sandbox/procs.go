//go:build linux

package sandbox

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
)

// rlimitNPROC is RLIMIT_NPROC (6 on Linux); the syscall package has no name for it.
const rlimitNPROC = 6

// procsWarning says what concurrent sandboxes will not get from the
// kernel, or "" when all is well. Every sandbox runs as one host uid
// (Ponder's, or nobody when Ponder is root). From Linux 5.14 the kernel
// counts RLIMIT_NPROC in each sandbox's own user namespace, so max_procs
// holds per sandbox; it also counts the processes of all sandboxes
// together against the uid's own limit, which bubblewrap inherits from
// Ponder (hostLimit). Before 5.14 only the uid's count exists: max_procs
// is shared by every sandbox, and a fork bomb in one leaves the others
// none. need is the most processes the sandboxes may hold at once.
func procsWarning(kernel string, hostLimit uint64, need, maxProcs int) string {
	if maj, min, ok := kernelVersion(kernel); ok && (maj < 5 || maj == 5 && min < 14) {
		return fmt.Sprintf("sandbox: Linux %s counts max_procs (%d) for all sandboxes together, not per sandbox (that needs 5.14): "+
			"a fork bomb in one sandbox makes the others fail to start processes until it is killed", kernel, maxProcs)
	}
	if hostLimit < uint64(need) {
		return fmt.Sprintf("sandbox: the process limit Ponder runs under (ulimit -u %d) is below what the sandboxes may hold at once "+
			"((max_parallel + max_sessions) × max_procs = %d): fork bombs in some sandboxes can stop others from starting "+
			"(\"bwrap: Creating new namespace failed: Resource temporarily unavailable\"); raise ulimit -u or lower those settings",
			hostLimit, need)
	}
	return ""
}

// kernelVersion reads "6.18.44-foo" as 6, 18.
func kernelVersion(release string) (major, minor int, ok bool) {
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(strings.TrimRightFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	return major, minor, err1 == nil && err2 == nil
}

// warnProcs logs procsWarning for this host.
func (s *Sandbox) warnProcs() {
	var u syscall.Utsname
	var release string
	if syscall.Uname(&u) == nil {
		var b strings.Builder
		for _, c := range u.Release {
			if c == 0 {
				break
			}
			b.WriteByte(byte(c))
		}
		release = b.String()
	}
	var lim syscall.Rlimit
	limit := ^uint64(0)
	if syscall.Getrlimit(rlimitNPROC, &lim) == nil {
		limit = lim.Cur
	}
	need := (s.opts.MaxParallel + s.opts.MaxSessions) * s.opts.MaxProcs
	if w := procsWarning(release, limit, need, s.opts.MaxProcs); w != "" {
		s.log.Warn().Msg(w)
	}
}
