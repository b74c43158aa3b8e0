// Package layer writes deterministic, compressed tar layers in one streaming pass.
package layer
