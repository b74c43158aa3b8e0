// Package gobuild compiles one Go main package for one platform into a static
// binary, in an environment it controls whole: the build runs the Go toolchain
// and nothing else (see rule.go).
package gobuild
