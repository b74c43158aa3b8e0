// Package layer writes deterministic tar layers, compressed or not, in one streaming pass.
package layer
