package vault_test

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/vault"
)

// rawGCM seals with crypto/aes GCM in the vault's output format (version byte, 4-byte key
// id, nonce, ciphertext, tag) and the same associated data: the baseline for Tink.
type rawGCM struct{ aead cipher.AEAD }

func newRawGCM() rawGCM {
	k := make([]byte, 32)
	rand.Read(k)
	b, _ := aes.NewCipher(k)
	g, _ := cipher.NewGCM(b)
	return rawGCM{g}
}

func (r rawGCM) seal(pt, ad []byte) []byte {
	out := make([]byte, 5, 5+12+len(pt)+16)
	out[0] = 1
	binary.BigEndian.PutUint32(out[1:], 42)
	nonce := make([]byte, 12)
	rand.Read(nonce)
	out = append(out, nonce...)
	return r.aead.Seal(out, nonce, pt, ad)
}

func (r rawGCM) open(ct, ad []byte) ([]byte, error) {
	return r.aead.Open(nil, ct[5:17], ct[17:], ad)
}

// BenchmarkRoundTrip compares a Seal+Open round trip through the vault (cached subject key)
// with raw crypto/aes GCM producing the same format, side by side.
func BenchmarkRoundTrip(b *testing.B) {
	e := open(b, "")
	raw := newRawGCM()
	for _, size := range []int{64, 1024} {
		pt := make([]byte, size)
		ad := []byte("user.contact.phone_number")
		b.Run(fmt.Sprintf("size=%d/vault", size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				ct, err := e.vault.Seal(ctx, "cust-1", pt, ad)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := e.vault.Open(ctx, "cust-1", ct, ad); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("size=%d/raw_gcm", size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				ct := raw.seal(pt, ad)
				if _, err := raw.open(ct, ad); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpenCacheMiss opens with a cold cache every time (unwrap from the store).
func BenchmarkOpenCacheMiss(b *testing.B) {
	e := open(b, "")
	const n = 4096
	cts := make([][]byte, n)
	for i := range n {
		ct, err := e.vault.Seal(ctx, privguard.SubjectID(fmt.Sprintf("s-%d", i)), []byte("13812345678"), nil)
		if err != nil {
			b.Fatal(err)
		}
		cts[i] = ct
	}
	kek, _ := vault.LoadLocalKEK(e.dir+"/master.keyset.json", nil)
	v, _ := vault.New(vault.Config{Store: e.db.Vault(), KEK: kek, TombstoneKey: []byte("0123456789abcdef0123456789abcdef"), CacheSize: -1})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := v.Open(ctx, privguard.SubjectID(fmt.Sprintf("s-%d", i%n)), cts[i%n], nil); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkShred is the latency of a durable shred (one fsynced transaction).
func BenchmarkShred(b *testing.B) {
	e := open(b, "")
	i := 0
	for b.Loop() {
		b.StopTimer()
		s := privguard.SubjectID(fmt.Sprintf("s-%d", i))
		e.vault.Seal(ctx, s, []byte("x"), nil)
		i++
		b.StartTimer()
		if err := e.vault.Shred(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBlindIndex is one token of an email address.
func BenchmarkBlindIndex(b *testing.B) {
	e := open(b, "")
	v := []byte("li.lei@example.com")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.vault.BlindIndex(ctx, "email", v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRotateKEK rewraps a store of subject keysets with a new KEK and reports the rate.
// PRIVGUARD_BENCH_KEYS sets the number of subjects (default 20,000).
func BenchmarkRotateKEK(b *testing.B) {
	n := 20_000
	if s := os.Getenv("PRIVGUARD_BENCH_KEYS"); s != "" {
		fmt.Sscan(s, &n)
	}
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		e := open(b, dir)
		for i := range n { // the fixture: one keyset per subject
			if _, err := e.vault.Seal(ctx, privguard.SubjectID(fmt.Sprintf("s-%d", i)), []byte("x"), nil); err != nil {
				b.Fatal(err)
			}
		}
		old, _ := vault.LoadLocalKEK(dir+"/master.keyset.json", nil)
		vault.InitLocalKEK(dir + "/next.json")
		next, _ := vault.LoadLocalKEK(dir+"/next.json", nil)
		v, _ := vault.New(vault.Config{Store: e.db.Vault(), KEK: next, PreviousKEKs: []vault.KEK{old}, TombstoneKey: []byte("0123456789abcdef")})
		b.StartTimer()
		p, err := v.RotateKEK(ctx, nil)
		if err != nil || p.Rewrapped != n {
			b.Fatalf("rotated %d of %d: %v", p.Rewrapped, n, err)
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "keysets/s")
	}
}

// BenchmarkSealJSON seals the five personal fields of a 1 KB profile.
func BenchmarkSealJSON(b *testing.B) {
	e := open(b, "")
	doc := []byte(`{"id":"c-1","name":"Li Lei","phone":"13812345678","email":"li.lei@example.com","id_card":"330106199001011234",` +
		`"address":"1 West Lake Road, Xihu District, Hangzhou","history":["` + strings.Repeat("sku-00000001\",\"", 60) + `sku-1"],"tier":"gold"}`)
	paths := []string{"name", "phone", "email", "id_card", "address"}
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.vault.SealJSON(ctx, "c-1", doc, paths); err != nil {
			b.Fatal(err)
		}
	}
}
