// Package checked reads manifests, configs and layers so that every byte it
// hands out has been checked against the digest (and size) that names it;
// what no digest names (a layout's index.json, a registry's manifest and
// referrers answers) it reads bounded, at most MaxJSON bytes.
package checked
