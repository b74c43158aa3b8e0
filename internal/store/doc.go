// Package store keeps images on disk, written atomically, in two rooms: the
// OCI image layout that kiln build writes and podman reads (Layout), and
// beside it the registry's storage (Repositories): repositories, links,
// uploads, referrers, the journal and gc.
package store
