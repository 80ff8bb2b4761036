package wire

import (
	"io"
	"net"
)

// connWriter batches a session's outgoing frames into few system calls
// without copying large payloads: headers, control frames and small DATA
// payloads are copied into buf, while a large DATA payload is written
// from its stream's memory by one writev with the bytes around it. The
// DATA request such a payload came with is answered only once it has
// been written (or writing failed), since its stream may reuse the
// memory after the answer. Used by the session's write loop only.
type connWriter struct {
	conn  io.Writer   // the connection: writev if it is a *net.TCPConn
	buf   []byte      // copied bytes; buf[mark:] not yet in iov
	mark  int         // end of the part of buf already in iov
	iov   net.Buffers // pieces to write, in order
	held  []*dataReq  // requests whose payload iov points into
	bytes int         // bytes buffered in all
}

const (
	// copyMax is the largest DATA payload connWriter copies; larger ones
	// are written from their stream's memory.
	copyMax = 16 << 10
	// flushAt is how many bytes connWriter gathers before it writes them
	// even though more frames are waiting.
	flushAt = 512 << 10
	// maxPieces bounds the pieces of one writev (the kernel takes 1024).
	maxPieces = 64
)

func newConnWriter(conn io.Writer) *connWriter {
	return &connWriter{conn: conn, buf: make([]byte, 0, 64<<10)}
}

// copyIn buffers a copy of p.
func (w *connWriter) copyIn(p []byte) {
	w.buf = append(w.buf, p...)
	w.bytes += len(p)
}

// data buffers DATA payload p of request r after header hdr and answers r
// at once if p was copied, else at the next flush.
func (w *connWriter) data(hdr []byte, p []byte, r *dataReq) {
	w.copyIn(hdr)
	if len(p) <= copyMax {
		w.copyIn(p)
		r.done <- nil
		return
	}
	if len(w.buf) > w.mark {
		w.iov = append(w.iov, w.buf[w.mark:])
		w.mark = len(w.buf)
	}
	w.iov = append(w.iov, p)
	w.held = append(w.held, r)
	w.bytes += len(p)
}

// full reports whether the buffered frames should be written now rather
// than after more.
func (w *connWriter) full() bool { return w.bytes >= flushAt || len(w.iov) >= maxPieces }

// buffered returns the number of bytes waiting to be written.
func (w *connWriter) buffered() int { return w.bytes }

// flush writes everything buffered and answers the held requests with
// the outcome.
func (w *connWriter) flush() error {
	if len(w.buf) > w.mark {
		w.iov = append(w.iov, w.buf[w.mark:])
	}
	var err error
	if pieces := w.iov; len(pieces) > 0 {
		_, err = pieces.WriteTo(w.conn) // consumes pieces, not w.iov
	}
	w.release(err)
	return err
}

// release answers the held requests with err and empties the buffers.
func (w *connWriter) release(err error) {
	for i, r := range w.held {
		r.done <- err
		w.held[i] = nil
	}
	clear(w.iov)
	w.held, w.iov, w.buf, w.mark, w.bytes = w.held[:0], w.iov[:0], w.buf[:0], 0, 0
}
