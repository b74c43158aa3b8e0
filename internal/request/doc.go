// Package request is a build request as data and its one way to run: what kiln build, kiln resolve and the build service all run.
package request
