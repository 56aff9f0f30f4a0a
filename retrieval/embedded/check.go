package embedded

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"

	bolt "go.etcd.io/bbolt"

	"github.com/ponder-rlm/ponder/retrieval"
)

// bbolt's file format (go.etcd.io/bbolt internal/common: page.go, meta.go),
// as it writes it: native-endian structs. A page begins with a 16-byte
// header (id u64, flags u16, count u16, overflow u32); pages 0 and 1 are
// meta pages, whose meta follows the header: magic u32, version u32,
// pageSize u32, flags u32, root bucket (root pgid u64, sequence u64),
// freelist pgid u64, pgid (the high-water mark: pages in use are below it)
// u64, txid u64, and an FNV-64a checksum of the 56 bytes before it.
const (
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	boltNoFreelist = ^uint64(0)
	boltMetaOff    = 16 // the page header's size
	boltMetaLen    = 64
)

// boltMeta is what checkFile reads of one meta page.
type boltMeta struct {
	pageSize             uint32
	root, freelist, pgid uint64
	txid                 uint64
	valid                bool // magic, version and checksum match
	magicOK, versionOK   bool
}

func parseMeta(page []byte) boltMeta {
	if len(page) < boltMetaOff+boltMetaLen {
		return boltMeta{}
	}
	b := page[boltMetaOff : boltMetaOff+boltMetaLen]
	ne := binary.NativeEndian
	m := boltMeta{
		pageSize: ne.Uint32(b[8:]),
		root:     ne.Uint64(b[16:]),
		freelist: ne.Uint64(b[32:]),
		pgid:     ne.Uint64(b[40:]),
		txid:     ne.Uint64(b[48:]),
	}
	m.magicOK = ne.Uint32(b[0:]) == boltMagic
	m.versionOK = ne.Uint32(b[4:]) == boltVersion
	h := fnv.New64a()
	h.Write(b[:56])
	m.valid = m.magicOK && m.versionOK && h.Sum64() == ne.Uint64(b[56:])
	return m
}

// readMeta reads the meta page at off (a short read at the end of the file
// gives an invalid meta).
func readMeta(f *os.File, off int64) (boltMeta, error) {
	buf := make([]byte, boltMetaOff+boltMetaLen)
	n, err := f.ReadAt(buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return boltMeta{}, err
	}
	return parseMeta(buf[:n]), nil
}

// checkFile refuses a store file that bbolt would map past its end.
//
// bbolt trusts the file: it memory-maps it and follows page ids from the
// meta page, so a file cut short (a copy or backup that stopped on a full
// disk) makes it read pages past the end of the file, which kills the
// process with SIGSEGV or SIGBUS (or, where the mapping reads zeros, a
// panic on the first search): nothing can recover from that. So before
// bbolt opens it, the file's meta pages are read here, the one bbolt
// would use is picked as bbolt does (the valid one with the higher
// transaction id), and every page in use (below its high-water mark)
// must lie within the file. A file no valid meta page names as bbolt's is
// refused too. A missing or empty file passes: bbolt makes a new store in
// it (an empty file read-only: see openBolt).
//
// The meta pages are read before the file's size: a writer in another
// process grows the file before it writes a meta page naming the new
// pages, so a meta read here never names pages a later size lacks.
func checkFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		// Missing (made by bbolt) or unreadable (bbolt says why).
		return nil
	}
	defer f.Close()
	m0, err := readMeta(f, 0)
	if err != nil {
		return fmt.Errorf("read document store %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("read document store %s: %w", path, err)
	}
	size := st.Size()
	if size == 0 {
		return nil
	}
	pageSize := int64(0)
	if m0.valid {
		pageSize = int64(m0.pageSize)
	} else {
		// Meta page 0 is damaged: bbolt looks for page 1 at every page size
		// from 1 KiB to 16 MiB, as here.
		for i := 0; i <= 14; i++ {
			pos := int64(1024) << i
			if pos >= size-1024 {
				break
			}
			m, err := readMeta(f, pos)
			if err != nil {
				return fmt.Errorf("read document store %s: %w", path, err)
			}
			if m.valid {
				pageSize = int64(m.pageSize)
				break
			}
		}
	}
	if pageSize == 0 {
		what := "does not begin with a document store's header: it is not a Ponder document store, or its first pages were overwritten"
		if m0.magicOK && !m0.versionOK {
			what = "was written by an incompatible version of the store's format"
		}
		return damaged(path, what)
	}
	m1, err := readMeta(f, pageSize)
	if err != nil {
		return fmt.Errorf("read document store %s: %w", path, err)
	}
	// bbolt's DB.meta: the meta with the higher txid if valid, else the other.
	use, other := m0, m1
	if m1.txid > m0.txid {
		use, other = m1, m0
	}
	if !use.valid {
		use = other
	}
	// Read after the metas: a size read now is at least what they name.
	if st, err = f.Stat(); err != nil {
		return fmt.Errorf("read document store %s: %w", path, err)
	}
	size = st.Size()
	ps := int64(use.pageSize)
	switch {
	case !use.valid || ps < boltMetaOff+boltMetaLen || ps > 1<<30:
		return damaged(path, "has a damaged header")
	case use.pgid < 2 || use.pgid > 1<<40 || use.root >= use.pgid || (use.freelist >= use.pgid && use.freelist != boltNoFreelist):
		return damaged(path, fmt.Sprintf("has a damaged header (its pages run to %d, its root is page %d)", use.pgid, use.root))
	case use.pgid > uint64(size/ps):
		return damaged(path, fmt.Sprintf("is cut short: it is %d bytes, but the data it holds runs to byte %d (a copy or backup that stopped early, on a full disk?)", size, int64(use.pgid)*ps))
	}
	return nil
}

// damaged is the error for a store file that is damaged (what says how). The
// file is left as it is: it may be all the user has.
func damaged(path, what string) error {
	return fmt.Errorf("%w: %s %s; Ponder leaves it as it is: restore it from a backup, or move it aside and ingest the documents again", retrieval.ErrDamaged, path, what)
}

// view is s.db.View, and update s.db.Update, with a panic in bbolt (a page
// within the file that is damaged: its header names another page, or a
// freed one is in use) returned as an error wrapping retrieval.ErrDamaged:
// one bad file must not end a server. bbolt rolls the transaction back as
// the panic passes (View and Update defer it), so the handle stays usable,
// and the recovery is at the transaction's boundary, so every lock taken
// around it is released by its own code. (checkFile keeps pages past the
// end of the file, whose reads are signals no recover can catch, from
// being read at all.)
func (s *Store) view(fn func(*bolt.Tx) error) (err error) {
	defer recoverDamage(s.path, &err)
	return s.db.View(fn)
}

func (s *Store) update(fn func(*bolt.Tx) error) (err error) {
	defer recoverDamage(s.path, &err)
	return s.db.Update(fn)
}

func recoverDamage(path string, err *error) {
	if r := recover(); r != nil {
		*err = damaged(path, fmt.Sprintf("cannot be read (%v)", r))
	}
}
