//go:build unix

package simulator

import (
	"fmt"
	"syscall"
)

// fdReserve is what a simulator process needs besides device sockets:
// stdio, the results and events files, the metrics listener, DNS, spare.
const fdReserve = 64

// RaiseOpenFileLimit raises the soft open-file limit to the hard limit and
// returns both.
func RaiseOpenFileLimit() (soft, hard uint64, err error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, 0, fmt.Errorf("read open-file limit: %w", err)
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			return l.Cur, l.Max, fmt.Errorf("raise open-file limit to %d: %w", l.Max, err)
		}
	}
	return l.Cur, l.Max, nil
}

// CheckOpenFiles raises the limit and says, naming the numbers, when a
// fleet of devices cannot fit in one process.
func CheckOpenFiles(devices int) error {
	soft, hard, err := RaiseOpenFileLimit()
	if err != nil {
		return err
	}
	need := uint64(devices) + fdReserve
	if need > soft {
		per := int(soft) - fdReserve
		procs := (devices + per - 1) / max(per, 1)
		return fmt.Errorf("a fleet of %d devices needs about %d open files, but this process may open %d (hard limit %d): "+
			"split it over processes with --procs %d (or shards with --shard i/N)", devices, need, soft, hard, procs)
	}
	return nil
}
