package chunkstore

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/klauspost/reedsolomon"
)

// ErrTooFewShards means more shards are missing than a Scheme's parity can
// rebuild.
var ErrTooFewShards = errors.New("too few shards")

// Scheme is a Reed-Solomon erasure code of Data data shards and Parity
// parity shards: any Data of the Data+Parity shards rebuild the whole.
// Data must be at least 1, Parity at least 0, and Data+Parity at most 256.
// A Scheme is a value; its methods are safe for concurrent use.
type Scheme struct {
	Data, Parity int
}

// String returns the scheme as "k+m", e.g. "4+2".
func (s Scheme) String() string { return fmt.Sprintf("%d+%d", s.Data, s.Parity) }

// Shards returns Data+Parity.
func (s Scheme) Shards() int { return s.Data + s.Parity }

// ShardSize returns the size of each shard of a chunk of size bytes:
// ceil(size/Data), and at least 1.
func (s Scheme) ShardSize(size int) int {
	if s.Data <= 0 || size <= 0 {
		return 1
	}
	return (size + s.Data - 1) / s.Data
}

// Validate reports whether s is a usable scheme.
func (s Scheme) Validate() error {
	if s.Data < 1 || s.Parity < 0 || s.Data+s.Parity > 256 {
		return fmt.Errorf("erasure scheme %s: want data >= 1, parity >= 0, data+parity <= 256", s)
	}
	return nil
}

func (s Scheme) encoder() (reedsolomon.Encoder, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if s.Parity == 0 {
		return nil, nil
	}
	enc, err := reedsolomon.New(s.Data, s.Parity)
	if err != nil {
		return nil, fmt.Errorf("erasure scheme %s: %w", s, err)
	}
	return enc, nil
}

// Split cuts data into Data data shards of ShardSize(len(data)) bytes, the
// last padded with zeros, and computes Parity parity shards of the same
// size. It returns Data+Parity freshly allocated shards, data shards first;
// the caller owns them and data is not retained.
func (s Scheme) Split(data []byte) ([][]byte, error) {
	enc, err := s.encoder()
	if err != nil {
		return nil, fmt.Errorf("erasure split: %w", err)
	}
	size := s.ShardSize(len(data))
	buf := make([]byte, size*s.Shards())
	copy(buf, data)
	shards := make([][]byte, s.Shards())
	for i := range shards {
		shards[i] = buf[i*size : (i+1)*size : (i+1)*size]
	}
	if enc != nil {
		if err := enc.Encode(shards); err != nil {
			return nil, fmt.Errorf("erasure split %s: %w", s, err)
		}
	}
	return shards, nil
}

// SplitInto is Split without copying data: the data shards that lie
// wholly inside data are slices of it, so data must not change while the
// shards are in use. The other shards (the last data shard, if padded,
// and the parity shards) are allocated with alloc, which must return
// exactly n bytes of any contents; owned lists them, for the caller to
// give back once done.
func (s Scheme) SplitInto(data []byte, alloc func(n int) []byte) (shards, owned [][]byte, err error) {
	enc, err := s.encoder()
	if err != nil {
		return nil, nil, fmt.Errorf("erasure split: %w", err)
	}
	size := s.ShardSize(len(data))
	shards = make([][]byte, s.Shards())
	for i := range shards {
		if end := (i + 1) * size; i < s.Data && end <= len(data) {
			shards[i] = data[i*size : end : end]
			continue
		}
		sh := alloc(size)
		if i < s.Data {
			clear(sh[copy(sh, data[min(i*size, len(data)):]):])
		}
		shards[i] = sh
		owned = append(owned, sh)
	}
	if enc != nil {
		if err := enc.Encode(shards); err != nil {
			return nil, nil, fmt.Errorf("erasure split %s: %w", s, err)
		}
	}
	return shards, owned, nil
}

// Join rebuilds the first size bytes of data from shards, which holds
// Data+Parity entries in Split's order with nil for each missing shard.
// Up to Parity shards may be missing; with more, the error wraps
// ErrTooFewShards. Shards present must all have ShardSize(size) bytes.
// Join may fill in missing entries of shards (with rebuilt data shards)
// but never modifies present ones. It does not verify parity: callers
// check the chunk's ID on the result.
func (s Scheme) Join(shards [][]byte, size int) ([]byte, error) {
	return s.JoinInto(nil, shards, size)
}

// JoinInto is Join writing the data into buf, whose contents are
// overwritten, when buf has room for Data*ShardSize(size) bytes; else into
// a new buffer.
func (s Scheme) JoinInto(buf []byte, shards [][]byte, size int) ([]byte, error) {
	enc, err := s.encoder()
	if err != nil {
		return nil, fmt.Errorf("erasure join: %w", err)
	}
	if len(shards) != s.Shards() {
		return nil, fmt.Errorf("erasure join %s: got %d shards, want %d", s, len(shards), s.Shards())
	}
	if size < 0 || size > s.Data*s.ShardSize(size) {
		return nil, fmt.Errorf("erasure join %s: bad size %d", s, size)
	}
	want := s.ShardSize(size)
	missing, missingData := 0, false
	for i, sh := range shards {
		if sh == nil {
			missing++
			if i < s.Data {
				missingData = true
			}
			continue
		}
		if len(sh) != want {
			return nil, fmt.Errorf("erasure join %s: shard %d has %d bytes, want %d", s, i, len(sh), want)
		}
	}
	if missing > s.Parity {
		return nil, fmt.Errorf("erasure join %s: %d of %d shards missing: %w", s, missing, s.Shards(), ErrTooFewShards)
	}
	if missingData {
		if err := enc.ReconstructData(shards); err != nil {
			return nil, fmt.Errorf("erasure join %s: %w", s, err)
		}
	}
	out := buf[:0]
	if cap(out) < want*s.Data {
		out = make([]byte, 0, want*s.Data)
	}
	for _, sh := range shards[:s.Data] {
		out = append(out, sh...)
	}
	return out[:size], nil
}

// ShardKey returns the key that shard i of chunk id, erasure-coded with s,
// is stored under in a node's store. With one data shard every shard is a
// whole copy of the chunk and the key is id itself, so a copy is found by
// the chunk's id; otherwise the key is the SHA-256 of "shoal shard", id and
// the scheme and index as bytes. Shard keys are not hashes of the shards'
// bytes: the chunk's id verifies them once they are joined.
func ShardKey(id ID, s Scheme, i int) ID {
	if s.Data == 1 {
		return id
	}
	h := sha256.New()
	h.Write([]byte("shoal shard\x00"))
	h.Write(id[:])
	h.Write([]byte{byte(s.Data), byte(s.Parity), byte(i)})
	return ID(h.Sum(nil))
}

// ParseScheme parses "k+m" (e.g. "4+2") as a Scheme and validates it.
func ParseScheme(s string) (Scheme, error) {
	ks, ms, ok := strings.Cut(s, "+")
	digits := func(v string) bool { return v != "" && strings.Trim(v, "0123456789") == "" }
	ok = ok && digits(ks) && digits(ms)
	k, errk := strconv.Atoi(ks)
	m, errm := strconv.Atoi(ms)
	if !ok || errk != nil || errm != nil {
		return Scheme{}, fmt.Errorf("erasure scheme %q: want data+parity, e.g. 2+1", s)
	}
	sc := Scheme{Data: k, Parity: m}
	if err := sc.Validate(); err != nil {
		return Scheme{}, err
	}
	if sc.Shards() > 255 {
		return Scheme{}, fmt.Errorf("erasure scheme %s: at most 255 shards", sc)
	}
	return sc, nil
}
