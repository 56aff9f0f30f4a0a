//go:build !linux

package server

import "io"

// unreadBytes is only known on Linux; elsewhere the fixed gap applies.
func unreadBytes(io.Writer) (int, bool) { return 0, false }
