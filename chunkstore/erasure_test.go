package chunkstore_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/bits"
	"testing"
	"unsafe"

	"shoal/chunkstore"
	"shoal/chunkstore/storetest"
)

// dropped returns a copy of shards with the shards in mask set to nil.
func dropped(shards [][]byte, mask uint) [][]byte {
	out := make([][]byte, len(shards))
	for i, s := range shards {
		if mask&(1<<i) == 0 {
			out[i] = bytes.Clone(s)
		}
	}
	return out
}

func TestSchemeJoinEveryLoss(t *testing.T) {
	for _, s := range []chunkstore.Scheme{{Data: 2, Parity: 1}, {Data: 4, Parity: 2}, {Data: 3, Parity: 0}} {
		for _, size := range []int{0, 1, 5, 1000, 4<<20 + 3} {
			data, _ := storetest.Chunk(uint64(size), size)
			shards, err := s.Split(data)
			if err != nil {
				t.Fatalf("%s Split(%d bytes): %v", s, size, err)
			}
			if len(shards) != s.Data+s.Parity {
				t.Fatalf("%s Split: got %d shards, want %d", s, len(shards), s.Data+s.Parity)
			}
			for i, sh := range shards {
				if len(sh) != s.ShardSize(size) {
					t.Fatalf("%s Split(%d): shard %d has %d bytes, want %d", s, size, i, len(sh), s.ShardSize(size))
				}
			}
			for mask := uint(0); mask < 1<<len(shards); mask++ {
				t.Run(fmt.Sprintf("%s/%d/lost%b", s, size, mask), func(t *testing.T) {
					got, err := s.Join(dropped(shards, mask), size)
					if bits.OnesCount(mask) > s.Parity {
						if !errors.Is(err, chunkstore.ErrTooFewShards) {
							t.Fatalf("Join with %d lost: got error %v, want ErrTooFewShards", bits.OnesCount(mask), err)
						}
						return
					}
					if err != nil {
						t.Fatalf("Join: %v", err)
					}
					if !bytes.Equal(got, data) {
						t.Fatalf("Join: got %d bytes (sum %s), want %d identical bytes", len(got), chunkstore.Sum(got), len(data))
					}
				})
			}
		}
	}
}

func TestSplitDoesNotAlias(t *testing.T) {
	data, _ := storetest.Chunk(1, 1000)
	orig := bytes.Clone(data)
	s := chunkstore.Scheme{Data: 2, Parity: 1}
	shards, err := s.Split(data)
	if err != nil {
		t.Fatal(err)
	}
	shards[0][0] ^= 0xff
	if !bytes.Equal(data, orig) {
		t.Fatal("changing a shard changed the input")
	}
}

func TestSchemeErrors(t *testing.T) {
	good := chunkstore.Scheme{Data: 2, Parity: 1}
	shards, err := good.Split([]byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		s      chunkstore.Scheme
		shards [][]byte
		size   int
	}{
		{"zero data", chunkstore.Scheme{Data: 0, Parity: 1}, shards, 5},
		{"negative parity", chunkstore.Scheme{Data: 2, Parity: -1}, shards, 5},
		{"too many shards", chunkstore.Scheme{Data: 200, Parity: 100}, shards, 5},
		{"wrong shard count", good, shards[:2], 5},
		{"short shard", good, [][]byte{shards[0], shards[1][:1], shards[2]}, 5},
		{"size too big", good, shards, 7},
		{"negative size", good, shards, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.s.Join(tt.shards, tt.size); err == nil {
				t.Fatalf("Join: got no error, want one")
			}
		})
	}
	if _, err := (chunkstore.Scheme{Data: 0, Parity: 2}).Split([]byte("x")); err == nil {
		t.Errorf("Split with zero data shards: got no error, want one")
	}
}

func TestParseScheme(t *testing.T) {
	for in, want := range map[string]chunkstore.Scheme{"2+1": {2, 1}, "4+2": {4, 2}, "1+0": {1, 0}, "1+2": {1, 2}} {
		if got, err := chunkstore.ParseScheme(in); err != nil || got != want {
			t.Errorf("ParseScheme(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "2", "+1", "2+", "0+1", "2++1", "2+-1", " 2+1", "2+1 ", "200+100", "a+b"} {
		if got, err := chunkstore.ParseScheme(in); err == nil {
			t.Errorf("ParseScheme(%q) = %v, want an error", in, got)
		}
	}
}

// dirty returns n bytes that are not zero, as a reused buffer would be.
func dirty(n int) []byte { return bytes.Repeat([]byte{0xaa}, n) }

func TestSplitIntoAndJoinIntoMatchSplitAndJoin(t *testing.T) {
	for _, s := range []chunkstore.Scheme{{Data: 2, Parity: 1}, {Data: 4, Parity: 2}, {Data: 3, Parity: 0}} {
		for _, size := range []int{0, 1, 5, 1000, 4 << 20, 4<<20 + 3} {
			data, _ := storetest.Chunk(uint64(size), size)
			want, err := s.Split(data)
			if err != nil {
				t.Fatal(err)
			}
			shards, owned, err := s.SplitInto(data, dirty)
			if err != nil {
				t.Fatalf("%s SplitInto(%d bytes): %v", s, size, err)
			}
			for i := range want {
				if !bytes.Equal(shards[i], want[i]) {
					t.Fatalf("%s SplitInto(%d bytes): shard %d differs from Split's", s, size, i)
				}
			}
			// Owned are exactly the shards not inside data.
			inData := func(sh []byte) bool {
				if len(sh) == 0 || len(data) == 0 {
					return false
				}
				lo, at := uintptr(unsafe.Pointer(&data[0])), uintptr(unsafe.Pointer(&sh[0]))
				return lo <= at && at < lo+uintptr(len(data))
			}
			var notInData int
			for _, sh := range shards {
				if !inData(sh) {
					notInData++
				}
			}
			for _, sh := range owned {
				if inData(sh) {
					t.Fatalf("%s SplitInto(%d bytes): an owned shard lies in data", s, size)
				}
			}
			if s.ShardSize(size) > 0 && len(owned) != notInData {
				t.Fatalf("%s SplitInto(%d bytes): %d owned shards, %d shards not in data", s, size, len(owned), notInData)
			}
			got, err := s.JoinInto(dirty(s.Data*s.ShardSize(size)), dropped(shards, 1), size)
			if s.Parity == 0 {
				got, err = s.JoinInto(dirty(s.Data*s.ShardSize(size)), shards, size)
			}
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%s JoinInto(%d bytes): %v, equal %v", s, size, err, bytes.Equal(got, data))
			}
		}
	}
}
