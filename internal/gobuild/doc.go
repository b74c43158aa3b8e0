// Package gobuild compiles one Go main package for one platform into a static binary.
package gobuild
