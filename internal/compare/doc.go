// Package compare reads two or more OCI images and reports their sizes, contents and attack surface against the first, the baseline.
//
// Everything it reads is checked against the digest that names it (package
// checked), and each image is read within Limits: memory does not grow with
// what an image or archive declares.
package compare
