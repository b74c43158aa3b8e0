// Package remoteopt builds the go-containerregistry options every registry client in kiln uses: the call's context, a keychain and a transport, and the insecure transport of --insecure-registry.
package remoteopt
