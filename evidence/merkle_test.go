package evidence

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"math/rand/v2"
	"testing"
)

// mth is RFC 6962's Merkle tree hash, written from the RFC's recursive definition.
func mth(d [][32]byte) [32]byte {
	switch len(d) {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return leafHash(d[0])
	}
	k := split(uint64(len(d)))
	return nodeHash(mth(d[:k]), mth(d[k:]))
}

func TestInclusionEverySize(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 1; n <= 70; n++ {
		d := make([][32]byte, n)
		for i := range d {
			d[i] = sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(i)))
		}
		for trial := range 6 {
			var p prover
			var leaves []leaf
			for i, h := range d {
				sel := trial == 0 && i == n-1 || trial == 1 || trial > 1 && rng.IntN(4) == 0
				p.add(h, sel)
				if sel {
					leaves = append(leaves, leaf{uint64(i), h})
				}
			}
			root, proof := p.finish()
			if want := mth(d); root != want {
				t.Fatalf("n=%d: root differs from RFC 6962's", n)
			}
			if err := verifyInclusion(uint64(n), root, leaves, proof); err != nil {
				t.Fatalf("n=%d trial %d: verifyInclusion = %v", n, trial, err)
			}
			if len(leaves) > 0 {
				bad := append([]leaf(nil), leaves...)
				bad[len(bad)/2].hash[0] ^= 1
				if verifyInclusion(uint64(n), root, bad, proof) == nil {
					t.Fatalf("n=%d: an altered leaf verifies", n)
				}
				if len(proof) > 0 {
					if verifyInclusion(uint64(n), root, leaves, proof[1:]) == nil {
						t.Fatalf("n=%d: a short proof verifies", n)
					}
				}
			}
		}
	}
}

func BenchmarkVerifyInclusion1M(b *testing.B) {
	const n = 1 << 20
	var p prover
	var leaves []leaf
	for i := range uint64(n) {
		h := sha256.Sum256(binary.BigEndian.AppendUint64(nil, i))
		p.add(h, i%2 == 0)
		if i%2 == 0 {
			leaves = append(leaves, leaf{i, h})
		}
	}
	root, proof := p.finish()
	b.ReportAllocs()
	for b.Loop() {
		if err := verifyInclusion(n, root, leaves, proof); err != nil {
			b.Fatal(err)
		}
	}
}

func TestAppendLineIsEncodingJSON(t *testing.T) {
	for _, ln := range []Line{
		{Seq: 7, Hash: "ab12", Record: []byte(`{"id":"x","subject":"p-1"}`), Receipt: "eyJh.eyJi.c2ln"},
		{Seq: 1 << 40, Hash: "00", Record: []byte(`{}`), Encoding: []byte{0, 1, 2, 250, 255}, Receipt: "a.b.c"},
	} {
		want, _ := json.Marshal(ln)
		if got := appendLine(nil, &ln); string(got) != string(want)+"\n" {
			t.Errorf("appendLine = %s; want %s", got, want)
		}
	}
}
