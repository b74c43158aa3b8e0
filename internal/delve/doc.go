// Package delve builds the Delve debugger that kiln build --debug puts in
// an image, once per platform, with the same go build rule as the program.
package delve
