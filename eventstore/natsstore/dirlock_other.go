//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly || illumos)

package natsstore

import "os"

// tryLock takes no lock on this platform (Windows, Solaris, AIX, Plan 9,
// WebAssembly: the standard library has no flock there): the lock file
// still records the latest holder, but a second server on the directory is
// not refused. Keep one server per directory by hand.
func tryLock(*os.File) (bool, error) { return true, nil }
