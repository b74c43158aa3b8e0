// Package config reads a .ko.yaml file: ko's build settings plus kiln's own additions under the kiln: key.
package config
