package wire

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
)

// SessionConfig configures a Session.
type SessionConfig struct {
	// Services lists the service names this side accepts streams for. A
	// SYN naming any other service is refused at once with CLOSE. Nil
	// accepts none (the session can still open streams).
	Services []string

	// Window is the receive window per stream in bytes: how much data the
	// peer may have sent that the local reader has not consumed yet.
	// Values below InitialWindow (including zero) mean InitialWindow.
	Window uint32

	// Logf, if not nil, is called once with the reason when the session
	// ends for any cause other than a local Close or an orderly close by
	// the peer.
	Logf func(format string, args ...any)
}

// acceptBacklog is how many accepted-but-not-Accepted streams a session
// queues before refusing further SYNs.
const acceptBacklog = 256

// ctrlFrame is a queued control frame (SYN, ACK, CLOSE, WINDOW).
type ctrlFrame struct {
	typ     byte
	id      uint32
	arg     uint32  // ACK: responder's id; WINDOW: increment
	service string  // SYN payload
	st      *Stream // stream the frame belongs to, or nil
}

// dataReq hands one DATA frame to the writer goroutine.
type dataReq struct {
	st   *Stream
	typ  byte
	p    []byte
	done chan error // capacity 1
}

// Session multiplexes streams over one connection, either side opening
// streams to services the other offers. All methods are safe for
// concurrent use. A Session owns its connection and closes it when the
// session ends.
type Session struct {
	conn     net.Conn
	services []string
	window   uint32
	logf     func(string, ...any)

	mu      sync.Mutex
	streams map[uint32]*Stream // by local id
	nextID  uint32

	ctrlMu     sync.Mutex
	ctrl       []ctrlFrame
	ctrlNotify chan struct{} // capacity 1

	dataq   chan *dataReq // unbuffered: a sent request is owned by the writer
	acceptq chan *Stream

	closeOnce sync.Once
	done      chan struct{}
	err       error // set before done is closed
}

// NewSession starts a session over conn with cfg and returns at once; the
// session reads and writes conn in its own goroutines until it ends.
func NewSession(conn net.Conn, cfg SessionConfig) *Session {
	w := cfg.Window
	if w < InitialWindow {
		w = InitialWindow
	}
	if w > MaxWindow {
		w = MaxWindow
	}
	s := &Session{
		conn:       conn,
		services:   slices.Clone(cfg.Services),
		window:     w,
		logf:       cfg.Logf,
		streams:    map[uint32]*Stream{},
		nextID:     1,
		ctrlNotify: make(chan struct{}, 1),
		dataq:      make(chan *dataReq),
		acceptq:    make(chan *Stream, acceptBacklog),
		done:       make(chan struct{}),
	}
	go s.readLoop()
	go s.writeLoop()
	return s
}

// Done returns a channel closed when the session has ended.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err returns nil while the session runs, then why it ended: an error
// wrapping ErrSessionClosed after a local Close or an orderly close by the
// peer, wrapping ErrProtocol after a malformed frame, or the connection's
// read or write error.
func (s *Session) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Close ends the session: it closes the connection and makes every pending
// and future Open, Accept, Read and Write on it fail. It returns nil; closing
// twice is harmless.
func (s *Session) Close() error {
	s.fail(ErrSessionClosed, false)
	return nil
}

// fail ends the session with err, once.
func (s *Session) fail(err error, log bool) {
	s.closeOnce.Do(func() {
		s.err = err
		s.conn.Close()
		if log && s.logf != nil {
			s.logf("wire session %s: %v", s.conn.RemoteAddr(), err)
		}
		close(s.done)
	})
}

// closedErr is the error operations return once the session has ended.
func (s *Session) closedErr() error {
	if errors.Is(s.err, ErrSessionClosed) {
		return s.err
	}
	return fmt.Errorf("%w: %w", ErrSessionClosed, s.err)
}

// protoErr ends the session because of a bad frame.
func (s *Session) protoErr(format string, args ...any) {
	s.fail(fmt.Errorf("%w: %s", ErrProtocol, fmt.Sprintf(format, args...)), true)
}

// Open opens a stream to service on the peer. It waits for the peer's ACK;
// the error wraps ErrServiceUnavailable if the peer refuses, ctx's error if
// ctx ends first, or ErrSessionClosed if the session ends.
func (s *Session) Open(ctx context.Context, service string) (*Stream, error) {
	if service == "" || len(service) > MaxServiceName {
		return nil, fmt.Errorf("open stream %q: service name must be 1 to %d bytes", service, MaxServiceName)
	}
	st := s.newStream(service, true)
	s.mu.Lock()
	id, err := s.allocID()
	if err != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("open stream %q: %w", service, err)
	}
	select {
	case <-s.done:
		s.mu.Unlock()
		return nil, fmt.Errorf("open stream %q: %w", service, s.closedErr())
	default:
	}
	st.localID = id
	s.streams[id] = st
	s.mu.Unlock()
	s.queueCtrl(ctrlFrame{typ: frameSYN, id: id, service: service})

	select {
	case err := <-st.ackCh:
		if err != nil {
			return nil, fmt.Errorf("open stream %q: %w", service, err)
		}
		return st, nil
	case <-ctx.Done():
		st.mu.Lock()
		acked := st.acked
		if !acked {
			st.abandoned = true
			st.localClosed = true
		}
		st.mu.Unlock()
		if acked {
			st.Close()
		}
		return nil, fmt.Errorf("open stream %q: %w", service, ctx.Err())
	case <-s.done:
		return nil, fmt.Errorf("open stream %q: %w", service, s.closedErr())
	}
}

// Accept waits for the peer to open a stream to one of the offered
// services and returns it. It fails with an error wrapping
// ErrSessionClosed once the session has ended.
func (s *Session) Accept() (*Stream, error) {
	select {
	case st := <-s.acceptq:
		return st, nil
	case <-s.done:
		return nil, fmt.Errorf("accept stream: %w", s.closedErr())
	}
}

// allocID returns a free local stream id. s.mu must be held.
func (s *Session) allocID() (uint32, error) {
	for range maxStreamID {
		id := s.nextID
		s.nextID++
		if s.nextID > maxStreamID {
			s.nextID = 1
		}
		if _, used := s.streams[id]; !used {
			return id, nil
		}
	}
	return 0, errors.New("all stream ids in use")
}

// removeStream forgets st once both sides have sent CLOSE.
func (s *Session) removeStream(st *Stream) {
	s.mu.Lock()
	if s.streams[st.localID] == st {
		delete(s.streams, st.localID)
	}
	s.mu.Unlock()
}

func (s *Session) lookup(id uint32) *Stream {
	s.mu.Lock()
	st := s.streams[id]
	s.mu.Unlock()
	return st
}

// queueCtrl queues a control frame for the writer. It never blocks, so the
// read loop can answer frames while the writer waits on the connection.
func (s *Session) queueCtrl(f ctrlFrame) {
	s.ctrlMu.Lock()
	s.ctrl = append(s.ctrl, f)
	s.ctrlMu.Unlock()
	select {
	case s.ctrlNotify <- struct{}{}:
	default:
	}
}

// writeLoop is the only writer of the connection. Control frames go
// first; DATA requests are taken one at a time, so streams waiting to
// send are served in turn. The buffer is flushed whenever nothing is
// waiting or it is full; only a flush can fail.
func (s *Session) writeLoop() {
	bw := newConnWriter(s.conn)
	defer bw.release(ErrSessionClosed)
	var hdr [FrameHeaderLen + MaxServiceName]byte
	var batch []ctrlFrame
	writeCtrl := func() {
		s.ctrlMu.Lock()
		batch, s.ctrl = s.ctrl, batch[:0]
		s.ctrlMu.Unlock()
		for _, f := range batch {
			if f.st != nil && !f.st.markSent(f.typ) {
				continue // after CLOSE nothing more goes out for a stream
			}
			n := FrameHeaderLen
			switch f.typ {
			case frameSYN:
				putHeader(hdr[:], f.typ, f.id, len(f.service))
				n += copy(hdr[FrameHeaderLen:], f.service)
			case frameACK:
				putHeader(hdr[:], f.typ, f.id, 3)
				hdr[8], hdr[9], hdr[10] = byte(f.arg>>16), byte(f.arg>>8), byte(f.arg)
				n += 3
			case frameOpenerWindow, frameResponderWindow:
				putHeader(hdr[:], f.typ, f.id, 4)
				binary.BigEndian.PutUint32(hdr[8:], f.arg)
				n += 4
			default: // CLOSE
				putHeader(hdr[:], f.typ, f.id, 0)
			}
			bw.copyIn(hdr[:n])
		}
		clear(batch)
	}
	for {
		writeCtrl()
		if !bw.full() {
			select {
			case req := <-s.dataq:
				s.writeData(bw, &hdr, req, writeCtrl)
				continue
			default:
			}
		}
		if bw.buffered() > 0 {
			if err := bw.flush(); err != nil {
				s.fail(fmt.Errorf("session write: %w", err), true)
				return
			}
		}
		select {
		case req := <-s.dataq:
			s.writeData(bw, &hdr, req, writeCtrl)
		case <-s.ctrlNotify:
		case <-s.done:
			return
		}
	}
}

// writeData buffers one DATA frame; the request is answered once its
// payload is no longer needed (see connWriter). It first buffers the
// control frames queued so far: a stream's ACK is queued before the
// stream is handed out, so it must precede the stream's DATA.
func (s *Session) writeData(bw *connWriter, hdr *[FrameHeaderLen + MaxServiceName]byte, req *dataReq, writeCtrl func()) {
	writeCtrl()
	if !req.st.markSent(req.typ) {
		req.done <- ErrStreamClosed
		return
	}
	putHeader(hdr[:], req.typ, req.st.remoteID, len(req.p))
	bw.data(hdr[:FrameHeaderLen], req.p, req)
}

// readLoop reads and dispatches frames until the connection fails or a
// frame is malformed.
func (s *Session) readLoop() {
	// A small buffer: headers and small frames come through it, while a
	// large DATA payload, once the buffered part is taken, is read
	// straight into its stream's buffer (bufio reads directly when a read
	// is at least its size).
	br := bufio.NewReaderSize(s.conn, 16<<10)
	var hdr [FrameHeaderLen]byte
	scratch := make([]byte, 0, MaxServiceName)
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			switch {
			case errors.Is(err, io.EOF):
				s.fail(fmt.Errorf("%w: peer closed the connection", ErrSessionClosed), false)
			case errors.Is(err, io.ErrUnexpectedEOF):
				s.fail(fmt.Errorf("session read: connection closed inside a frame header: %w", err), true)
			default:
				s.fail(fmt.Errorf("session read: %w", err), true)
			}
			return
		}
		typ, id, n := parseHeader(hdr[:])
		if n > MaxFramePayload {
			s.protoErr("%s frame for stream %d declares %d payload bytes, more than %d", frameName(typ), id, n, MaxFramePayload)
			return
		}
		if id == 0 {
			s.protoErr("%s frame uses reserved stream id 0", frameName(typ))
			return
		}
		var ok bool
		switch typ {
		case frameOpenerData, frameResponderData:
			ok = s.handleData(br, typ, id, n)
		default:
			if n > MaxServiceName {
				s.protoErr("%s frame for stream %d has %d payload bytes", frameName(typ), id, n)
				return
			}
			scratch = scratch[:n]
			if _, err := io.ReadFull(br, scratch); err != nil {
				s.fail(fmt.Errorf("session read: connection closed inside a %s frame: %w", frameName(typ), noEOF(err)), true)
				return
			}
			ok = s.handleCtrl(typ, id, scratch)
		}
		if !ok {
			return
		}
	}
}

// noEOF turns a bare io.EOF into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// handleCtrl handles a frame other than DATA. It returns false if the
// session has ended.
func (s *Session) handleCtrl(typ byte, id uint32, p []byte) bool {
	switch typ {
	case frameSYN:
		return s.handleSYN(id, string(p))
	case frameACK:
		if len(p) != 3 {
			s.protoErr("ACK for stream %d has %d payload bytes, want 3", id, len(p))
			return false
		}
		rid := uint32(p[0])<<16 | uint32(p[1])<<8 | uint32(p[2])
		if rid == 0 {
			s.protoErr("ACK for stream %d names reserved responder id 0", id)
			return false
		}
		st := s.lookup(id)
		if st == nil || !st.opener {
			s.protoErr("ACK for unknown stream %d", id)
			return false
		}
		return st.handleACK(rid)
	case frameOpenerClose, frameResponderClose:
		if len(p) != 0 {
			s.protoErr("%s for stream %d has %d payload bytes, want 0", frameName(typ), id, len(p))
			return false
		}
		st := s.lookup(id)
		if st == nil || st.opener != (typ == frameResponderClose) {
			s.protoErr("%s for unknown stream %d", frameName(typ), id)
			return false
		}
		return st.handleClose()
	case frameOpenerWindow, frameResponderWindow:
		if len(p) != 4 {
			s.protoErr("%s for stream %d has %d payload bytes, want 4", frameName(typ), id, len(p))
			return false
		}
		st := s.lookup(id)
		if st == nil || st.opener != (typ == frameResponderWindow) {
			s.protoErr("%s for unknown stream %d", frameName(typ), id)
			return false
		}
		return st.handleWindow(binary.BigEndian.Uint32(p))
	}
	s.protoErr("unknown frame type 0x%02X for stream %d", typ, id)
	return false
}

// handleSYN accepts or refuses a stream the peer opens.
func (s *Session) handleSYN(rid uint32, service string) bool {
	if service == "" {
		s.protoErr("SYN for stream %d names no service", rid)
		return false
	}
	if !slices.Contains(s.services, service) {
		s.queueCtrl(ctrlFrame{typ: frameResponderClose, id: rid})
		return true
	}
	// Only this goroutine adds to acceptq, so if there is room now the
	// send below cannot block.
	if len(s.acceptq) >= acceptBacklog {
		s.queueCtrl(ctrlFrame{typ: frameResponderClose, id: rid})
		return true
	}
	st := s.newStream(service, false)
	st.remoteID = rid
	st.acked = true
	s.mu.Lock()
	id, err := s.allocID()
	if err != nil {
		s.mu.Unlock()
		s.queueCtrl(ctrlFrame{typ: frameResponderClose, id: rid})
		return true
	}
	st.localID = id
	s.streams[id] = st
	s.mu.Unlock()
	// ACK is queued before the stream is handed out, so it goes out before
	// any DATA or CLOSE of the stream.
	s.queueCtrl(ctrlFrame{typ: frameACK, id: rid, arg: id, st: st})
	if extra := s.window - InitialWindow; extra > 0 {
		s.queueCtrl(ctrlFrame{typ: frameResponderWindow, id: rid, arg: extra, st: st})
	}
	s.acceptq <- st
	return true
}

// handleData reads a DATA frame's payload straight into its stream's
// buffer.
func (s *Session) handleData(br *bufio.Reader, typ byte, id, n uint32) bool {
	st := s.lookup(id)
	if st == nil || st.opener != (typ == frameResponderData) || !st.acked {
		s.protoErr("%s for unknown stream %d", frameName(typ), id)
		return false
	}
	return st.receive(br, n)
}
