package wire

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Stream is one bidirectional byte stream of a Session. It implements
// io.ReadWriteCloser. Read and Write may be called concurrently with each
// other and with Close; concurrent Writes are serialized, each one's bytes
// staying contiguous. The caller must Close every stream it gets, also
// after Read returned io.EOF, so the stream id can be reused. A Read of
// 64 KiB or more that has to wait gets the next DATA payload read from the
// connection straight into its buffer.
type Stream struct {
	s       *Session
	service string
	opener  bool   // this side sent the SYN
	localID uint32 // id the peer addresses this stream by

	// remoteID is set before the stream is returned by Open (by the read
	// loop, on ACK) or Accept, and never changes afterwards.
	remoteID uint32
	ackCh    chan error // Open waits here for ACK or refusal

	wmu  sync.Mutex // serializes Write
	reqs [2]dataReq // two DATA frames in flight keep the writer busy

	readNotify  chan struct{} // capacity 1
	writeNotify chan struct{} // capacity 1
	dl          deadline

	mu           sync.Mutex
	acked        bool // opener: ACK received; responder: always
	abandoned    bool // opener gave up before the ACK
	localClosed  bool // Close called
	closeSent    bool // our CLOSE is written: nothing more goes out
	remoteClosed bool // peer's CLOSE received
	buf          []byte
	off          int         // buf[off:] is unread
	direct       *directRead // a waiting Read's buffer, offered to the read loop
	recvAvail    uint32      // how much more the peer may send
	unacked      uint32      // consumed bytes not yet returned as credit
	credit       uint32      // how much more we may send
}

func (s *Session) newStream(service string, opener bool) *Stream {
	st := &Stream{
		s:           s,
		service:     service,
		opener:      opener,
		ackCh:       make(chan error, 1),
		readNotify:  make(chan struct{}, 1),
		writeNotify: make(chan struct{}, 1),
		dl:          makeDeadline(),
		recvAvail:   s.window,
		credit:      InitialWindow,
	}
	for i := range st.reqs {
		st.reqs[i] = dataReq{st: st, typ: frameResponderData, done: make(chan error, 1)}
		if opener {
			st.reqs[i].typ = frameOpenerData
		}
	}
	return st
}

// Service returns the service name the stream was opened for.
func (st *Stream) Service() string { return st.service }

// SetDeadline sets the deadline for pending and future Read and Write
// calls; past it they fail with an error wrapping os.ErrDeadlineExceeded.
// A zero t means no deadline. A Write that already handed a frame to the
// connection finishes that frame first.
func (st *Stream) SetDeadline(t time.Time) error {
	st.dl.set(t)
	return nil
}

func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (st *Stream) closeType() byte {
	if st.opener {
		return frameOpenerClose
	}
	return frameResponderClose
}

func (st *Stream) windowType() byte {
	if st.opener {
		return frameOpenerWindow
	}
	return frameResponderWindow
}

// minDirectRead is the smallest Read that offers its buffer to the read
// loop (directRead).
const minDirectRead = 64 << 10

// directRead is a waiting Read's buffer, offered to the read loop: while
// the stream has no data buffered, the next DATA payload goes from the
// connection straight into p instead of through the stream's buffer,
// sparing a copy of every byte of a bulk transfer.
type directRead struct {
	p []byte
	n int // bytes the read loop put into p
	// whole (ReadFull's offers) keeps the offer up until p is full: the
	// read loop puts payload after payload into it, and itself returns
	// their bytes to the peer as credit, since the reader does not see
	// them until the end. A Read's offer takes one payload: between two
	// Reads the read loop would otherwise buffer, and copy, the payloads
	// of a fast sender.
	whole bool
	// cancel asks the read loop to end a whole offer after the payload
	// in hand: the reader wants it back.
	cancel bool
	done   chan struct{} // closed once the read loop is done with p
	// split, on a Read's offer (readSplit's head), is the body to offer
	// next: see readSplit.
	split *splitBody
}

// splitBody is the second buffer of a split read (readSplit).
type splitBody struct {
	d *directRead // a whole offer of the body, its p trimmed by length
	// length says from the bytes the head took how many bytes of the
	// message follow them; 0 if the body is not to be offered. It runs in
	// the read loop.
	length func(head []byte) int
	// armed records that the read loop offered d (under st.mu): it closes
	// d.done once finished with it.
	armed bool
}

// Read reads data the peer sent. It returns io.EOF once the peer has
// closed the stream and all its data has been read, an error wrapping
// ErrStreamClosed after Close, and one wrapping ErrSessionClosed if the
// session ended before the peer closed the stream.
func (st *Stream) Read(p []byte) (int, error) { return st.read(p, false, nil) }

// ReadFull reads exactly len(p) bytes into p, as io.ReadFull(st, p) does
// (io.ErrUnexpectedEOF if the peer closes the stream first), with the
// payloads that arrive while it waits going straight into p.
func (st *Stream) ReadFull(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := st.read(p[n:], true, nil)
		n += m
		if err == io.EOF && n > 0 {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// readSplit reads a message whose length the reader learns from its
// first bytes, when the sender writes those first bytes and the rest
// (the body) in separate Writes: a Read into head (one payload, at most
// len(head) bytes). If that payload fits in head whole, the read loop
// asks length how long the body is and, if it is no longer than body,
// offers body[:length] to the payloads that follow: they go from the
// connection straight into body, none of them buffered, to be copied,
// while the reader wakes up to the head. It returns the head's bytes and
// body's, as many of length's count as arrived before the reader gave up
// waiting (a deadline, a CLOSE, the session's end: ReadFull of the rest
// reports those); bn is 0 if body was not offered.
func (st *Stream) readSplit(head, body []byte, length func(head []byte) int) (hn, bn int, err error) {
	sb := &splitBody{d: &directRead{p: body, whole: true, done: make(chan struct{})}, length: length}
	if hn, err = st.read(head, false, sb); err != nil {
		return hn, 0, err
	}
	st.mu.Lock()
	armed := sb.armed
	st.mu.Unlock()
	if armed {
		bn = st.awaitBody(sb.d)
	}
	return hn, bn, nil
}

// awaitBody waits until the read loop has filled d, a split read's body
// it offered, or the reader has to give up: then it takes d back. It
// returns the bytes in d.p, whose credit the loop returned to the peer.
func (st *Stream) awaitBody(d *directRead) int {
wait:
	for {
		select {
		case <-d.done:
			break wait
		case <-st.s.done:
			break wait
		case <-st.dl.wait():
			break wait
		case <-st.readNotify: // a CLOSE, or Close
			st.mu.Lock()
			closed := st.localClosed || st.remoteClosed
			st.mu.Unlock()
			if closed {
				break wait
			}
		}
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.withdraw(d)
	return d.n
}

// withdraw takes offer d back from the read loop or, if the loop is
// filling it (or has finished with it), waits until the loop is done with
// d.p. Called with st.mu held, which it releases while it waits.
func (st *Stream) withdraw(d *directRead) {
	if st.direct == d {
		st.direct = nil
		return
	}
	d.cancel = true
	st.mu.Unlock()
	<-d.done
	st.mu.Lock()
}

// read is Read, or with whole one step of ReadFull; a Read offering its
// buffer passes split on to the read loop (readSplit).
func (st *Stream) read(p []byte, whole bool, split *splitBody) (int, error) {
	var offer *directRead
	for {
		st.mu.Lock()
		if offer != nil {
			st.withdraw(offer)
			if offer.n > 0 && !st.localClosed {
				var inc uint32
				if !offer.whole { // the read loop counted a whole offer's bytes
					inc = st.consumed(offer.n)
				}
				st.mu.Unlock()
				st.grant(inc)
				return offer.n, nil
			}
			offer = nil
		}
		if st.localClosed {
			st.mu.Unlock()
			return 0, fmt.Errorf("read stream %d %q: %w", st.localID, st.service, ErrStreamClosed)
		}
		if st.off < len(st.buf) {
			n := copy(p, st.buf[st.off:])
			st.off += n
			inc := st.consumed(n)
			st.mu.Unlock()
			st.grant(inc)
			return n, nil
		}
		remoteClosed := st.remoteClosed
		if len(p) == 0 || remoteClosed {
			st.mu.Unlock()
			if remoteClosed && len(p) > 0 {
				return 0, io.EOF
			}
			return 0, nil
		}
		select {
		case <-st.s.done:
			st.mu.Unlock()
			return 0, fmt.Errorf("read stream %d %q: %w", st.localID, st.service, st.s.closedErr())
		case <-st.dl.wait():
			st.mu.Unlock()
			return 0, fmt.Errorf("read stream %d %q: %w", st.localID, st.service, os.ErrDeadlineExceeded)
		default:
		}
		var filled chan struct{} // nil: no offer, never ready
		if (len(p) >= minDirectRead || split != nil) && st.direct == nil {
			offer = &directRead{p: p, whole: whole, split: split, done: make(chan struct{})}
			st.direct, filled = offer, offer.done
		}
		st.mu.Unlock()
		select {
		case <-st.readNotify:
		case <-filled:
		case <-st.s.done:
		case <-st.dl.wait():
		}
	}
}

// consumed records that a Read took n bytes and returns the credit to
// grant the peer now (zero to wait for more). Called with st.mu held.
func (st *Stream) consumed(n int) uint32 {
	st.unacked += uint32(n)
	if st.unacked < st.s.window/4 || st.remoteClosed {
		return 0
	}
	inc := st.unacked
	st.unacked = 0
	st.recvAvail += inc
	return inc
}

// grant sends the peer inc bytes of credit, if any.
func (st *Stream) grant(inc uint32) {
	if inc > 0 {
		st.s.queueCtrl(ctrlFrame{typ: st.windowType(), id: st.remoteID, arg: inc, st: st})
	}
}

// Write sends p to the peer, in DATA frames of at most MaxDataFrame bytes,
// waiting for flow-control credit as needed. It returns how much of p was
// handed to the connection and, if not all, an error wrapping
// ErrStreamClosed (closed locally or by the peer), ErrSessionClosed, or
// os.ErrDeadlineExceeded.
func (st *Stream) Write(p []byte) (int, error) {
	st.wmu.Lock()
	defer st.wmu.Unlock()
	// Up to two frames are handed to the writer before waiting for the
	// first, so it can batch them into one system call. Frames of one
	// stream reach the writer in order: each hand-off completes only when
	// the writer takes the frame.
	var pending [2]*dataReq
	npending, total := 0, 0
	var werr error
	finish := func() { // wait for the oldest frame
		r := pending[0]
		pending[0], pending[1] = pending[1], nil
		npending--
		switch err := <-r.done; {
		case err == nil:
			total += len(r.p)
		case werr != nil:
		case err == ErrStreamClosed:
			werr = err
		default:
			werr = fmt.Errorf("%w: %w", ErrSessionClosed, err)
		}
		r.p = nil
	}
	for len(p) > 0 && werr == nil {
		if npending == len(pending) {
			finish()
			continue
		}
		st.mu.Lock()
		switch {
		case st.localClosed:
			werr = ErrStreamClosed
		case st.remoteClosed:
			werr = fmt.Errorf("%w by peer", ErrStreamClosed)
		}
		if werr == nil && st.credit > 0 {
			n := min(uint32(len(p)), st.credit, MaxDataFrame)
			st.credit -= n
			st.mu.Unlock()
			r := &st.reqs[0]
			if r.p != nil {
				r = &st.reqs[1]
			}
			r.p = p[:n]
			select {
			case st.s.dataq <- r:
				// The writer owns r now and always answers.
				pending[npending] = r
				npending++
				p = p[n:]
			case <-st.s.done:
				r.p = nil
				werr = st.s.closedErr()
			}
			continue
		}
		st.mu.Unlock()
		if werr != nil {
			break
		}
		select {
		case <-st.s.done:
			werr = st.s.closedErr()
			continue
		case <-st.dl.wait():
			werr = os.ErrDeadlineExceeded
			continue
		default:
		}
		select {
		case <-st.writeNotify:
		case <-st.s.done:
		case <-st.dl.wait():
		}
	}
	for npending > 0 {
		finish()
	}
	if werr != nil {
		return total, fmt.Errorf("write stream %d %q: %w", st.localID, st.service, werr)
	}
	return total, nil
}

// Close closes the stream: it sends CLOSE, discards data still arriving,
// and makes pending and future Reads and Writes on it fail. Closing twice
// is harmless. It returns nil.
func (st *Stream) Close() error {
	st.mu.Lock()
	if st.localClosed {
		st.mu.Unlock()
		return nil
	}
	st.localClosed = true
	st.buf, st.off = nil, 0
	st.mu.Unlock()
	notify(st.readNotify)
	notify(st.writeNotify)
	st.s.queueCtrl(ctrlFrame{typ: st.closeType(), id: st.remoteID, st: st})
	return nil
}

// markSent is called by the writer before it writes a frame of st of type
// typ. It reports false if the frame must not go out because CLOSE did.
func (st *Stream) markSent(typ byte) bool {
	st.mu.Lock()
	if st.closeSent {
		st.mu.Unlock()
		return false
	}
	remove := false
	if typ == frameOpenerClose || typ == frameResponderClose {
		st.closeSent = true
		remove = st.remoteClosed
	}
	st.mu.Unlock()
	if remove {
		st.s.removeStream(st)
	}
	return true
}

// handleACK runs in the read loop when the peer accepts an opened stream.
func (st *Stream) handleACK(rid uint32) bool {
	st.mu.Lock()
	if st.acked {
		st.mu.Unlock()
		st.s.protoErr("second ACK for stream %d", st.localID)
		return false
	}
	st.remoteID = rid
	st.acked = true
	abandoned := st.abandoned
	st.mu.Unlock()
	if abandoned {
		st.s.queueCtrl(ctrlFrame{typ: frameOpenerClose, id: rid, st: st})
		return true
	}
	if extra := st.s.window - InitialWindow; extra > 0 {
		st.s.queueCtrl(ctrlFrame{typ: frameOpenerWindow, id: rid, arg: extra, st: st})
	}
	st.ackCh <- nil
	return true
}

// handleClose runs in the read loop when the peer sends CLOSE.
func (st *Stream) handleClose() bool {
	st.mu.Lock()
	if !st.acked {
		// The peer refused our SYN.
		abandoned := st.abandoned
		st.mu.Unlock()
		st.s.removeStream(st)
		if !abandoned {
			st.ackCh <- ErrServiceUnavailable
		}
		return true
	}
	if st.remoteClosed {
		st.mu.Unlock()
		st.s.protoErr("second CLOSE for stream %d", st.localID)
		return false
	}
	st.remoteClosed = true
	remove := st.closeSent
	st.mu.Unlock()
	notify(st.readNotify)
	notify(st.writeNotify)
	if remove {
		st.s.removeStream(st)
	}
	return true
}

// handleWindow runs in the read loop when the peer grants credit.
func (st *Stream) handleWindow(inc uint32) bool {
	st.mu.Lock()
	var bad string
	switch {
	case inc == 0:
		bad = "zero increment"
	case !st.acked:
		bad = "before ACK"
	case st.remoteClosed:
		bad = "after CLOSE"
	case uint64(st.credit)+uint64(inc) > MaxWindow:
		bad = fmt.Sprintf("overflows credit %d by %d", st.credit, inc)
	}
	if bad == "" {
		st.credit += inc
	}
	st.mu.Unlock()
	if bad != "" {
		st.s.protoErr("WINDOW for stream %d: %s", st.localID, bad)
		return false
	}
	notify(st.writeNotify)
	return true
}

// receive runs in the read loop for a DATA frame of n bytes: it reads the
// payload from br straight into the stream's buffer.
func (st *Stream) receive(br *bufio.Reader, n uint32) bool {
	st.mu.Lock()
	if st.remoteClosed {
		st.mu.Unlock()
		st.s.protoErr("DATA for stream %d after its CLOSE", st.localID)
		return false
	}
	if n > st.recvAvail {
		avail := st.recvAvail
		st.mu.Unlock()
		st.s.protoErr("DATA for stream %d carries %d bytes, window allows %d", st.localID, n, avail)
		return false
	}
	st.recvAvail -= n
	if st.off == len(st.buf) && !st.localClosed {
		st.buf, st.off = st.buf[:0], 0
		if d := st.direct; d != nil {
			// A Read waits with nothing buffered: its buffer takes the
			// payload, or as much of it as fits.
			st.direct = nil
			st.mu.Unlock()
			k := min(int(n), len(d.p)-d.n)
			_, err := io.ReadFull(br, d.p[d.n:d.n+k])
			st.mu.Lock()
			var inc uint32
			if err == nil {
				d.n += k
				if d.whole {
					inc = st.consumed(k)
				}
			}
			going := err == nil && !d.cancel && !st.localClosed
			if going && d.whole && d.n < len(d.p) {
				st.direct = d // the next payload goes on filling p
			} else {
				close(d.done)
				if sb := d.split; going && sb != nil && k == int(n) {
					if l := sb.length(d.p[:d.n]); l > 0 && l <= len(sb.d.p) {
						sb.d.p = sb.d.p[:l]
						sb.armed = true
						st.direct = sb.d // the next payloads go into the body
					}
				}
			}
			st.mu.Unlock()
			st.grant(inc)
			if err != nil {
				return st.s.failInFrame(err)
			}
			if n -= uint32(k); n == 0 {
				return true
			}
			st.mu.Lock()
		}
	}
	if st.localClosed {
		st.mu.Unlock()
		if _, err := br.Discard(int(n)); err != nil {
			return st.s.failInFrame(err)
		}
		return true
	}
	need := int(n)
	if cap(st.buf)-len(st.buf) < need {
		if st.off > 0 {
			m := copy(st.buf, st.buf[st.off:])
			st.buf, st.off = st.buf[:m], 0
		}
		if cap(st.buf)-len(st.buf) < need {
			nb := make([]byte, len(st.buf), max(2*cap(st.buf), len(st.buf)+need, 64<<10))
			copy(nb, st.buf)
			st.buf = nb
		}
	}
	start := len(st.buf)
	region := st.buf[start : start+need]
	st.mu.Unlock()
	// Only the read loop moves or grows buf, and Read looks at buf[off:]
	// only up to len(buf), so region may be filled unlocked.
	if _, err := io.ReadFull(br, region); err != nil {
		return st.s.failInFrame(err)
	}
	st.mu.Lock()
	if !st.localClosed {
		st.buf = st.buf[:start+need]
	}
	st.mu.Unlock()
	notify(st.readNotify)
	return true
}

// failInFrame ends the session after the connection failed with err
// inside a DATA frame's payload, and returns false for the read loop.
func (s *Session) failInFrame(err error) bool {
	s.fail(fmt.Errorf("session read: connection closed inside a DATA frame: %w", noEOF(err)), true)
	return false
}

// deadline is a settable deadline whose wait channel is closed once it
// passes.
type deadline struct {
	mu    sync.Mutex
	timer *time.Timer
	ch    chan struct{}
}

func makeDeadline() deadline { return deadline{ch: make(chan struct{})} }

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.ch // the timer fired and closed ch; wait is over
	}
	d.timer = nil
	select {
	case <-d.ch:
		d.ch = make(chan struct{})
	default:
	}
	if t.IsZero() {
		return
	}
	if dur := time.Until(t); dur > 0 {
		ch := d.ch
		d.timer = time.AfterFunc(dur, func() { close(ch) })
		return
	}
	close(d.ch)
}

func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ch
}
