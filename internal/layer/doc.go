// Package layer makes deterministic tar layers: a compressed one is written in one streaming pass, an uncompressed one is made again from its files at each read and checked against its digest.
package layer
