// Package cli is kiln's command line: it turns flags and the environment into the one build request (internal/request) that build, resolve, apply and run all run, or into another command's options.
package cli
