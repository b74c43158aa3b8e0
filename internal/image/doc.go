// Package image puts a compiled binary, its kodata and extra files onto a base image.
package image
