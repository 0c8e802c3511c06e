package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/privguard/privguard/boltstore"
)

// openDataFile opens the data file of the data directory dir for the command cmd
// ("consent verify"). The file must exist: a command never creates an empty one by
// mistake (a wrong --data). When another process holds the file's lock, the error says so
// plainly and how to go on: stop serve, or, for commands that only read (copyOK), run
// against a copy.
func openDataFile(dir, cmd string, copyOK bool, opts boltstore.Options) (*boltstore.DB, error) {
	path := filepath.Join(dir, dataFile)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no data file at %s (is --data %s right?): %w", path, dir, err)
	}
	db, err := boltstore.Open(path, opts)
	if errors.Is(err, boltstore.ErrLocked) {
		return nil, inUse(dir, cmd, copyOK)
	}
	return db, err
}

// inUse is the error for a data file another process holds.
func inUse(dir, cmd string, copyOK bool) error {
	if !copyOK {
		return fmt.Errorf("the data file %s is in use by another privguard process, most likely a running privguard serve: stop serve first (privguard %s changes the data file, so it cannot run while serve does)",
			filepath.Join(dir, dataFile), cmd)
	}
	copyDir := filepath.Clean(dir) + "-copy"
	return fmt.Errorf("the data file %s is in use by another privguard process, most likely a running privguard serve: stop serve first, or run this against a copy (cp -a %s %s && privguard %s --data %s)",
		filepath.Join(dir, dataFile), dir, copyDir, cmd, copyDir)
}
