// Package vcs reads the git state of a source directory: commit, tag, dirtiness and origin.
package vcs
