// Package oneline keeps an error's text to the one line kiln prints.
package oneline
