package bench

import (
	"encoding/binary"
	"math/rand/v2"
)

// pageSize is the granularity at which written data is made distinct.
const pageSize = 4096

// pattern makes incompressible blocks in which every 4 KiB page differs
// from every other page written in the same run, so neither compression
// nor deduplication helps a store. Not safe for concurrent use.
type pattern struct {
	pool  []byte
	rng   *rand.Rand
	stamp uint64
}

// patternPool is the size of the random pool blocks are cut from.
const patternPool = 8 << 20

func newPattern(seed uint64) *pattern {
	rng := rand.New(rand.NewPCG(seed, 0x5e0a1))
	pool := make([]byte, patternPool+pageSize)
	for i := 0; i+8 <= len(pool); i += 8 {
		binary.LittleEndian.PutUint64(pool[i:], rng.Uint64())
	}
	return &pattern{pool: pool, rng: rng}
}

// fill fills b with fresh data: random bytes from the pool, with the first
// 8 bytes of every page overwritten by a run-unique counter.
func (p *pattern) fill(b []byte) {
	for off := 0; off < len(b); {
		start := p.rng.IntN(patternPool/8) * 8
		n := copy(b[off:], p.pool[start:start+pageSize])
		if n >= 8 {
			p.stamp++
			binary.LittleEndian.PutUint64(b[off:], p.stamp)
		}
		off += n
	}
}
