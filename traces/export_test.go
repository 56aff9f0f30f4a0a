package traces

// WrapSyncDir makes every sync of a folder after a trace's rename call
// wrap with the folder and the real sync, until restore. Tests that use
// it must not be parallel: the wrapper is the package's.
func WrapSyncDir(wrap func(dir string, sync func(string) error) error) (restore func()) {
	old := syncDir
	syncDir = func(dir string) error { return wrap(dir, old) }
	return func() { syncDir = old }
}
