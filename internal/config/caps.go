package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// capabilityNames lists the Linux capabilities by number (linux/capability.h).
var capabilityNames = []string{
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL",
	"SETGID", "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE",
	"NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
	"SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
	"SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME",
	"SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL",
	"SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
	"BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
}

// CapabilityNumber returns the number of a Linux capability, named as
// "CAP_NET_BIND_SERVICE" or "net_bind_service" in any case, or given as a
// number from 0 to 63 (as ko allows, for capabilities newer than this list).
func CapabilityNumber(name string) (int, error) {
	if n, err := strconv.ParseUint(name, 10, 6); err == nil {
		return int(n), nil
	}
	upper := strings.TrimPrefix(strings.ToUpper(name), "CAP_")
	if i := slices.Index(capabilityNames, upper); i >= 0 {
		return i, nil
	}
	return 0, fmt.Errorf("unknown capability %q; use a name from capabilities(7) such as net_bind_service or CAP_NET_BIND_SERVICE", name)
}

// Capabilities are the Linux file capabilities to give a binary. Bit n of a
// mask stands for capability number n.
type Capabilities struct {
	Permitted   uint64
	Inheritable uint64
	Effective   bool // raise the permitted capabilities into the effective set at exec
}

// ParseCapabilities reads builds[].linux_capabilities the way ko does. Each
// term is a capability name, added to the permitted set, or a
// cap_from_text(3) clause such as "net_bind_service=ep",
// "bpf,perfmon+p" or "all=p" (an empty name list before "=" means all).
// The result is the zero value when no capability ends up permitted or
// inheritable.
func ParseCapabilities(terms []string) (Capabilities, error) {
	var permitted, inheritable, effective uint64
	for _, term := range terms {
		i := strings.IndexAny(term, "+-=")
		if i < 0 {
			m, err := capabilityMask(term)
			if err != nil {
				return Capabilities{}, err
			}
			permitted |= m
			continue
		}
		names, actions := term[:i], term[i:]
		if names == "" && actions[0] == '=' {
			names = "all"
		}
		var mask uint64
		for name := range strings.SplitSeq(names, ",") {
			m, err := capabilityMask(name)
			if err != nil {
				return Capabilities{}, fmt.Errorf("%q: %w", term, err)
			}
			mask |= m
		}
		var keep uint64 // what the current operator leaves of mask
		for _, c := range actions {
			switch c {
			case '+':
				keep = ^uint64(0)
			case '-':
				keep = ^mask
			case '=':
				keep = ^uint64(0)
				permitted &^= mask
				inheritable &^= mask
				effective &^= mask
			case 'p':
				permitted = (permitted | mask) & keep
			case 'i':
				inheritable = (inheritable | mask) & keep
			case 'e':
				effective = (effective | mask) & keep
			default:
				return Capabilities{}, fmt.Errorf("%q: unknown flag %q; use p, i or e after +, - or =", term, c)
			}
		}
	}
	if permitted == 0 && inheritable == 0 {
		return Capabilities{}, nil
	}
	return Capabilities{Permitted: permitted, Inheritable: inheritable, Effective: effective != 0}, nil
}

// capabilityMask returns the mask for one capability, or for "all" known ones.
func capabilityMask(name string) (uint64, error) {
	if strings.EqualFold(name, "all") {
		return 1<<len(capabilityNames) - 1, nil
	}
	n, err := CapabilityNumber(name)
	if err != nil {
		return 0, err
	}
	return 1 << n, nil
}
