// Package platform parses the --platform flag into linux platforms a Go toolchain can target.
package platform
