// Package client is the build service's client, as `kiln build --remote`
// uses it: it packs the module a package is in, submits the build, follows
// its log as it happens and cancels it on request.
//
// It owns the client side of the /api/v1 protocol alone: it neither builds
// nor stores anything.
package client
