package mosquittotest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// listensOn reports whether process pid holds a listening TCP socket on
// every one of ports, from Linux's /proc: the process's socket inodes
// against the kernel's socket tables. Where /proc cannot tell (not Linux, no
// permission) it answers true, leaving the accepting dial and the process
// still running as the only evidence.
func listensOn(pid int, ports []int) bool {
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(fdDir)
	if err != nil {
		return true
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		target, err := os.Readlink(fdDir + "/" + fd.Name())
		if inode, ok := strings.CutPrefix(target, "socket:["); err == nil && ok {
			inodes[strings.TrimSuffix(inode, "]")] = true
		}
	}
	held := map[int]bool{}
	for _, table := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			continue
		}
		// Each row: sl local_address rem_address st ... inode, with the
		// address as HEXIP:HEXPORT and st 0A meaning LISTEN.
		for _, row := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(row)
			if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] {
				continue
			}
			_, hexPort, _ := strings.Cut(f[1], ":")
			if port, err := strconv.ParseUint(hexPort, 16, 16); err == nil {
				held[int(port)] = true
			}
		}
	}
	for _, p := range ports {
		if !held[p] {
			return false
		}
	}
	return true
}
