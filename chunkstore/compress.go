package chunkstore

import (
	"errors"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// MaxDecompressed is the largest plain length Decompress accepts. It bounds
// the memory a hostile frame can make a reader allocate.
const MaxDecompressed = 64 << 20

// ErrTooLarge means a length exceeds MaxDecompressed.
var ErrTooLarge = errors.New("chunk too large")

const (
	// probeMin is the input size from which Compress first compresses a
	// sample and gives up early if the sample does not shrink.
	probeMin = 64 << 10
	// probePiece is the size of each of the three sample pieces.
	probePiece = 8 << 10
)

var (
	zOnce sync.Once
	zEnc  *zstd.Encoder
	zDec  *zstd.Decoder
	zErr  error
)

func zcodec() (*zstd.Encoder, *zstd.Decoder, error) {
	zOnce.Do(func() {
		zEnc, zErr = zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(1),
			zstd.WithZeroFrames(true))
		if zErr != nil {
			return
		}
		zDec, zErr = zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(0),
			zstd.WithDecoderMaxMemory(MaxDecompressed),
			zstd.WithDecodeAllCapLimit(true))
	})
	return zEnc, zDec, zErr
}

// worthIt reports whether packing n plain bytes into c bytes saves at least
// one eighth.
func worthIt(c, n int) bool { return c <= n-n/8 }

// Compress appends the zstd (SpeedFastest) compression of src to dst and
// returns the extended slice and true, or dst unchanged and false when
// compression would not save at least one eighth of len(src). Inputs of
// 64 KiB or more are probed with a small sample first, so incompressible
// data costs little. Compress is safe for concurrent use.
func Compress(dst, src []byte) ([]byte, bool) {
	enc, _, err := zcodec()
	if err != nil || len(src) == 0 {
		return dst, false
	}
	if len(src) >= probeMin {
		mid := len(src)/2 - probePiece/2
		sample := make([]byte, 0, 3*probePiece)
		sample = append(sample, src[:probePiece]...)
		sample = append(sample, src[mid:mid+probePiece]...)
		sample = append(sample, src[len(src)-probePiece:]...)
		c := enc.EncodeAll(sample, nil)
		// The sample must at least shrink by a sixteenth to be worth a try.
		if len(c) > len(sample)-len(sample)/16 {
			return dst, false
		}
	}
	n := len(dst)
	out := enc.EncodeAll(src, dst)
	if !worthIt(len(out)-n, len(src)) {
		return dst[:n], false
	}
	return out, true
}

// Decompress appends the decompression of the zstd frame src, which must
// hold exactly plainLen bytes, to dst and returns the extended slice. It
// never decodes more than plainLen bytes, and refuses plainLen above
// MaxDecompressed with ErrTooLarge. Damaged input gives an error wrapping
// ErrCorrupt. Decompress is safe for concurrent use.
func Decompress(dst, src []byte, plainLen int) ([]byte, error) {
	if plainLen < 0 || plainLen > MaxDecompressed {
		return dst, fmt.Errorf("decompress %d bytes: %w", plainLen, ErrTooLarge)
	}
	_, dec, err := zcodec()
	if err != nil {
		return dst, fmt.Errorf("decompress: %w", err)
	}
	n := len(dst)
	if cap(dst)-n < plainLen {
		grown := make([]byte, n, n+plainLen)
		copy(grown, dst)
		dst = grown
	}
	// With the cap limit the decoder writes at most cap(dst)-len(dst) bytes.
	out, err := dec.DecodeAll(src, dst[:n:n+plainLen])
	if err != nil {
		return dst[:n], fmt.Errorf("decompress %d bytes: %w: %v", plainLen, ErrCorrupt, err)
	}
	if got := len(out) - n; got != plainLen {
		return dst[:n], fmt.Errorf("decompress: got %d bytes, want %d: %w", got, plainLen, ErrCorrupt)
	}
	return out, nil
}
