// Package pipeline runs a build end to end: resolve packages and bases, compile per platform, assemble images, publish.
package pipeline
