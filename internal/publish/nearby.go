package publish

import (
	"net"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Nearby reports whether every destination of p is on this machine, where
// compression auto stores layers uncompressed (compressing costs more time
// than the bytes save there): the local store and oci: layouts, a registry
// on a loopback address, and a container engine (--load). Archives are not
// nearby: they are files made to be carried elsewhere. A publisher that
// does not say (no Nearby method) is taken to be far.
func Nearby(p Publisher) bool {
	n, ok := p.(interface{ Nearby() bool })
	return ok && n.Nearby()
}

// Nearby implements the question Nearby asks: a layout is on this machine.
func (l *ToLayout) Nearby() bool { return true }

// Nearby is true for a registry on a loopback address. One that forwards
// to another machine (a tunnel, a port-forward) is taken for nearby too:
// pick gzip for it.
func (r *ToRegistry) Nearby() bool { return LoopbackRegistry(r.Repo) }

// Nearby is true: the engine's CLI runs here (one that forwards to another
// host, like DOCKER_HOST=ssh://…, is taken for nearby too).
func (l *Load) Nearby() bool { return true }

// Nearby is true: kind's nodes run on this machine and take the archive
// from a file here.
func (k *Kind) Nearby() bool { return true }

// Nearby is false: an archive is made to be carried elsewhere.
func (o *OCIArchive) Nearby() bool { return false }

// Nearby is false: an archive is made to be carried elsewhere.
func (d *DockerArchive) Nearby() bool { return false }

// Nearby is true when every destination is nearby (and for none at all:
// nothing leaves the machine).
func (m Multi) Nearby() bool {
	for _, p := range m {
		if !Nearby(p) {
			return false
		}
	}
	return true
}

// LoopbackRegistry reports whether repo (a repository or registry name)
// names a registry on a loopback address. Names are not resolved: only
// localhost, *.localhost and loopback IP literals count.
func LoopbackRegistry(repo string) bool {
	var host string
	if strings.Contains(repo, "/") {
		r, err := name.NewRepository(repo)
		if err != nil {
			return false
		}
		host = r.RegistryStr()
	} else { // a bare registry, as the build service names its own
		r, err := name.NewRegistry(repo)
		if err != nil {
			return false
		}
		host = r.RegistryStr()
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.Trim(host, "[]"))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
