// Package buildrecord is what the build service says about a build: its
// record (inputs, state and the time of each, results, phases, error),
// its log lines, the filter and page of a listing, the allowed moves
// between states, and the errors a store of records returns. It has no
// storage and no dependencies beyond the standard library, so that
// clients of the API (kiln build --remote) share the types without
// linking a database driver; internal/records stores them.
package buildrecord
