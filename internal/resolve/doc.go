// Package resolve replaces ko:// image references in Kubernetes YAML and
// JSON with the references of built images, changing nothing else: the
// bytes around each reference (comments, key order, anchors, quoting,
// line endings) are kept as they were read.
//
// The package does not build anything: the caller passes a Build function
// that turns an import path into a published reference. Its inputs are
// files (ReadInputs) or the output of kustomize run in-process (Kustomize),
// which kustomize re-serialized without comments.
package resolve
