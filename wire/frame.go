package wire

import (
	"encoding/binary"
	"errors"
)

// Frame types. Opener→responder types are 0xA0–0xAF, responder→opener
// types 0x50–0x5F, as in i2p ministreaming; WINDOW is shoal's extension.
const (
	frameOpenerData   byte = 0xA0 // id: responder's id; payload: data
	frameSYN          byte = 0xA1 // id: opener's id; payload: service name
	frameOpenerClose  byte = 0xA2 // id: responder's id; no payload
	frameOpenerWindow byte = 0xA3 // id: responder's id; payload: be32 credit increment

	frameResponderData   byte = 0x50 // id: opener's id; payload: data
	frameACK             byte = 0x51 // id: opener's id; payload: be24 responder's id
	frameResponderClose  byte = 0x52 // id: opener's id; no payload
	frameResponderWindow byte = 0x53 // id: opener's id; payload: be32 credit increment
)

const (
	// FrameHeaderLen is the size of a frame header: type byte, 3-byte
	// stream id, 4-byte payload length, all big-endian.
	FrameHeaderLen = 8

	// MaxFramePayload is the largest payload a frame may declare. A frame
	// declaring more is a protocol error.
	MaxFramePayload = 1 << 20

	// MaxDataFrame is the largest DATA payload this implementation sends,
	// so that frames of different streams interleave: small enough that
	// a stream waits little behind another's frame, large enough that
	// bulk transfers take few system calls.
	MaxDataFrame = 256 << 10

	// InitialWindow is the credit, in payload bytes, each side of a new
	// stream starts with: how much DATA it may send before the first
	// WINDOW frame from its peer.
	InitialWindow = 1 << 20

	// MaxWindow bounds a stream's outstanding send credit. A WINDOW frame
	// that raises credit beyond it is a protocol error.
	MaxWindow = 1<<31 - 1

	// MaxServiceName is the longest service name a SYN may carry.
	MaxServiceName = 255

	maxStreamID = 1<<24 - 1
)

var (
	// ErrSessionClosed means the session has ended: closed locally, closed
	// by the peer, or failed. Session.Err says why.
	ErrSessionClosed = errors.New("session closed")

	// ErrServiceUnavailable means the peer refused a stream because it does
	// not offer the service named in the SYN.
	ErrServiceUnavailable = errors.New("service unavailable")

	// ErrProtocol means the peer sent a malformed or out-of-place frame;
	// the session is closed with an error wrapping it and saying why.
	ErrProtocol = errors.New("stream protocol violation")

	// ErrStreamClosed means the stream was closed, locally or by the peer,
	// before the operation could complete.
	ErrStreamClosed = errors.New("stream closed")
)

// putHeader writes a frame header into b.
func putHeader(b []byte, typ byte, id uint32, n int) {
	b[0] = typ
	b[1] = byte(id >> 16)
	b[2] = byte(id >> 8)
	b[3] = byte(id)
	binary.BigEndian.PutUint32(b[4:8], uint32(n))
}

// parseHeader splits a frame header.
func parseHeader(b []byte) (typ byte, id uint32, n uint32) {
	return b[0], uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]), binary.BigEndian.Uint32(b[4:8])
}

// frameName names a frame type for error messages.
func frameName(typ byte) string {
	switch typ {
	case frameOpenerData:
		return "DATA(0xA0)"
	case frameSYN:
		return "SYN(0xA1)"
	case frameOpenerClose:
		return "CLOSE(0xA2)"
	case frameOpenerWindow:
		return "WINDOW(0xA3)"
	case frameResponderData:
		return "DATA(0x50)"
	case frameACK:
		return "ACK(0x51)"
	case frameResponderClose:
		return "CLOSE(0x52)"
	case frameResponderWindow:
		return "WINDOW(0x53)"
	}
	return "unknown"
}
