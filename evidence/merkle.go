package evidence

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math/bits"
)

// The inclusion evidence is an RFC 6962 (Certificate Transparency) Merkle tree over the
// ledger's record hashes in sequence order (leaf i is record i+1), and one multi-leaf
// inclusion proof for the records an export holds: the roots of the subtrees that hold
// none of them, in left-to-right order. A verifier rebuilds the root from the records and
// those nodes. The proof of k records out of n is at most about k·log2(n/k) nodes: 20
// for one record of 1M, none when an export holds every record.

// leafHash is RFC 6962's leaf hash of a record hash.
func leafHash(h [32]byte) [32]byte {
	var b [33]byte
	copy(b[1:], h[:])
	return sha256.Sum256(b[:])
}

// nodeHash is RFC 6962's interior node hash.
func nodeHash(l, r [32]byte) [32]byte {
	var b [65]byte
	b[0] = 1
	copy(b[1:], l[:])
	copy(b[33:], r[:])
	return sha256.Sum256(b[:])
}

// subtree is a complete subtree on the prover's stack.
type subtree struct {
	size  uint64
	hash  [32]byte
	sel   bool       // it holds an exported leaf
	proof [][32]byte // if sel: the proof nodes within it, in order
}

// prover builds the tree over leaves added in order, and the proof of the selected ones,
// holding only the frontier (one subtree per bit of the size) and the proof so far.
type prover struct {
	stack []subtree
	size  uint64
}

func (p *prover) add(recordHash [32]byte, selected bool) {
	t := subtree{size: 1, hash: leafHash(recordHash), sel: selected}
	for len(p.stack) > 0 && p.stack[len(p.stack)-1].size == t.size {
		t = join(p.stack[len(p.stack)-1], t)
		p.stack = p.stack[:len(p.stack)-1]
	}
	p.stack = append(p.stack, t)
	p.size++
}

func join(l, r subtree) subtree {
	t := subtree{size: l.size + r.size, hash: nodeHash(l.hash, r.hash), sel: l.sel || r.sel}
	if t.sel {
		t.proof = append(part(l), part(r)...)
	}
	return t
}

// part is what a child contributes to its parent's proof: its own proof if it holds a
// selected leaf, else its root.
func part(t subtree) [][32]byte {
	if t.sel {
		return t.proof
	}
	return [][32]byte{t.hash}
}

// finish returns the tree's root and the proof of the selected leaves (none if none is).
// RFC 6962 splits a tree at the largest power of two below its size, so the frontier's
// subtrees are joined from the right.
func (p *prover) finish() (root [32]byte, proof [][32]byte) {
	if len(p.stack) == 0 {
		return sha256.Sum256(nil), nil
	}
	t := p.stack[len(p.stack)-1]
	for i := len(p.stack) - 2; i >= 0; i-- {
		t = join(p.stack[i], t)
	}
	if !t.sel {
		return t.hash, nil
	}
	return t.hash, t.proof
}

// leaf is an exported record as the verifier sees it: its index in the tree (seq-1) and
// its record hash.
type leaf struct {
	index uint64
	hash  [32]byte
}

var errProofShort = errors.New("the proof has too few nodes")

// verifyInclusion checks that leaves (strictly increasing indexes) are in the tree of size
// n with the given root, using proof.
func verifyInclusion(n uint64, root [32]byte, leaves []leaf, proof [][32]byte) error {
	if len(leaves) == 0 {
		if len(proof) != 0 {
			return errors.New("a proof for no records")
		}
		return nil
	}
	for i, l := range leaves {
		if l.index >= n {
			return fmt.Errorf("record %d is beyond the tree of %d records", l.index+1, n)
		}
		if i > 0 && l.index <= leaves[i-1].index {
			return fmt.Errorf("record %d is out of order", l.index+1)
		}
	}
	next := 0
	var rec func(lo, hi uint64, ls []leaf) ([32]byte, error)
	rec = func(lo, hi uint64, ls []leaf) ([32]byte, error) {
		if len(ls) == 0 {
			if next == len(proof) {
				return [32]byte{}, errProofShort
			}
			next++
			return proof[next-1], nil
		}
		if hi-lo == 1 {
			return leafHash(ls[0].hash), nil
		}
		k := split(hi - lo)
		cut := 0
		for cut < len(ls) && ls[cut].index < lo+k {
			cut++
		}
		l, err := rec(lo, lo+k, ls[:cut])
		if err != nil {
			return l, err
		}
		r, err := rec(lo+k, hi, ls[cut:])
		return nodeHash(l, r), err
	}
	got, err := rec(0, n, leaves)
	if err != nil {
		return err
	}
	if next != len(proof) {
		return fmt.Errorf("the proof has %d nodes more than the records need", len(proof)-next)
	}
	if got != root {
		return errors.New("the records and the proof do not hash to the checkpoint's root")
	}
	return nil
}

// split is the largest power of two smaller than n (n ≥ 2).
func split(n uint64) uint64 { return 1 << (bits.Len64(n-1) - 1) }
