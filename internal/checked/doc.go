// Package checked reads manifests, configs and layers so that every byte it
// hands out has been checked against the digest (and size) that names it.
package checked
