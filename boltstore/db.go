package boltstore

import (
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/privguard/privguard"
)

// DefaultLockTimeout is how long Open waits for another process to release the file.
const DefaultLockTimeout = 2 * time.Second

// ErrLocked means another process holds the data file's lock (a running `privguard serve`,
// or another command); [Open] and [CompactFile] return it, wrapped, after waiting
// [Options.LockTimeout]. It also matches [privguard.ErrUnavailable].
var ErrLocked = fmt.Errorf("boltstore: the data file is in use by another process: %w", privguard.ErrUnavailable)

// Options configure [Open]. The zero value is ready to use.
type Options struct {
	// LockTimeout is how long to wait for the file lock; zero means DefaultLockTimeout.
	LockTimeout time.Duration
	// ReadOnly opens the file with a shared lock for inspection (`privguard consent verify`).
	ReadOnly bool
}

// DB is an open privguard data file.
type DB struct {
	bolt *bolt.DB
}

// Open opens or creates the data file at path (mode 0600). Returns an error matching
// [ErrLocked] if another process holds the file past opts.LockTimeout.
func Open(path string, opts Options) (*DB, error) {
	if opts.LockTimeout == 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	b, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:         opts.LockTimeout,
		ReadOnly:        opts.ReadOnly,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: 256 << 20, // readers never wait for a remap below this size
	})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("open %s: %w", path, ErrLocked)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db := &DB{bolt: b}
	missing := false
	_ = db.bolt.View(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if tx.Bucket(name) == nil {
				missing = true
			}
		}
		return nil
	})
	// Only a file missing buckets is written to on open: opening must not change a file
	// (serve refuses to start on a wrong master key without touching the data).
	if !opts.ReadOnly && missing {
		if err := db.bolt.Update(func(tx *bolt.Tx) error {
			for _, name := range allBuckets {
				if _, err := tx.CreateBucketIfNotExists(name); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Close()
			return nil, fmt.Errorf("create buckets in %s: %w", path, err)
		}
	}
	return db, nil
}

// Close closes the file. It waits for open transactions to finish.
func (db *DB) Close() error { return db.bolt.Close() }

// Path returns the file's path.
func (db *DB) Path() string { return db.bolt.Path() }

var (
	bucketRecords  = []byte("consent.records")
	bucketIDs      = []byte("consent.ids")
	bucketSubjects = []byte("consent.subjects")
	bucketIdem     = []byte("consent.idempotency")
	bucketNotices  = []byte("consent.notices")
	bucketSuppress = []byte("consent.suppression")
	bucketMeta     = []byte("meta")

	bucketVaultKeys       = []byte("vault.keys")
	bucketVaultTombstones = []byte("vault.tombstones")
	bucketDSAR            = []byte("dsar.requests")
	bucketDSARResults     = []byte("dsar.results")

	bucketJournal  = []byte("journal")
	bucketSets     = []byte("sets")
	bucketSetSizes = []byte("sets.size")

	bucketIdentityLinks    = []byte("identity.links")
	bucketIdentitySubjects = []byte("identity.subjects")

	allBuckets = [][]byte{bucketRecords, bucketIDs, bucketSubjects, bucketIdem, bucketNotices, bucketSuppress, bucketMeta,
		bucketVaultKeys, bucketVaultTombstones, bucketDSAR, bucketDSARResults, bucketJournal, bucketSets, bucketSetSizes,
		bucketIdentityLinks, bucketIdentitySubjects}
)

// bucket returns the named bucket or an error (a read-only file that was never written).
func bucket(tx *bolt.Tx, name []byte) (*bolt.Bucket, error) {
	b := tx.Bucket(name)
	if b == nil {
		return nil, fmt.Errorf("bucket %s missing: %w", name, privguard.ErrNotFound)
	}
	return b, nil
}
