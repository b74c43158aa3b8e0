// Package cli is kiln's command line: it turns flags and the environment into pipeline options.
package cli
