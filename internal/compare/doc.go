// Package compare reads two or more OCI images and reports their sizes, contents and attack surface against the first, the baseline.
package compare
