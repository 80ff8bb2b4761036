package wire

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// sessionPair returns two sessions talking over net.Pipe, closed at the
// end of the test.
func sessionPair(t testing.TB, a, b SessionConfig) (*Session, *Session) {
	t.Helper()
	ca, cb := net.Pipe()
	sa, sb := NewSession(ca, a), NewSession(cb, b)
	t.Cleanup(func() { sa.Close(); sb.Close() })
	return sa, sb
}

// tcpSessionPair is sessionPair over loopback TCP.
func tcpSessionPair(t testing.TB, a, b SessionConfig) (*Session, *Session) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			t.Error(err)
		}
		acc <- c
	}()
	ca, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cb := <-acc
	if cb == nil {
		t.FailNow()
	}
	sa, sb := NewSession(ca, a), NewSession(cb, b)
	t.Cleanup(func() { sa.Close(); sb.Close() })
	return sa, sb
}

// serve accepts streams on s until it ends and runs h on each in its own
// goroutine, closing the stream afterwards.
func serve(s *Session, h func(*Stream)) {
	go func() {
		for {
			st, err := s.Accept()
			if err != nil {
				return
			}
			go func() {
				defer st.Close()
				h(st)
			}()
		}
	}()
}

// digestHandler reads an le64 length and that many bytes, and answers
// with their SHA-256.
func digestHandler(st *Stream) {
	var n [8]byte
	if _, err := io.ReadFull(st, n[:]); err != nil {
		return
	}
	h := sha256.New()
	if _, err := io.CopyN(h, st, int64(binary.LittleEndian.Uint64(n[:]))); err != nil {
		return
	}
	st.Write(h.Sum(nil))
}

func TestOpenAcceptBothDirections(t *testing.T) {
	a, b := sessionPair(t, SessionConfig{Services: []string{"x"}}, SessionConfig{Services: []string{"y"}})
	echo := func(st *Stream) { io.Copy(st, io.LimitReader(st, 5)) }
	serve(a, echo)
	serve(b, echo)
	for _, tc := range []struct {
		name    string
		from    *Session
		service string
	}{{"a opens y on b", a, "y"}, {"b opens x on a", b, "x"}} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := tc.from.Open(context.Background(), tc.service)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer st.Close()
			if st.Service() != tc.service {
				t.Errorf("Service() = %q, want %q", st.Service(), tc.service)
			}
			if _, err := st.Write([]byte("hello")); err != nil {
				t.Fatalf("Write: %v", err)
			}
			got, err := io.ReadAll(st)
			if err != nil {
				t.Fatalf("ReadAll: %v", err)
			}
			if string(got) != "hello" {
				t.Errorf("got %q, want %q", got, "hello")
			}
		})
	}
}

func TestManyConcurrentStreams(t *testing.T) {
	for _, tc := range []struct {
		name string
		pair func(testing.TB, SessionConfig, SessionConfig) (*Session, *Session)
	}{{"pipe", sessionPair}, {"tcp", tcpSessionPair}} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := tc.pair(t, SessionConfig{}, SessionConfig{Services: []string{ServiceChunks}})
			serve(b, digestHandler)
			var wg sync.WaitGroup
			for i := range 24 {
				wg.Go(func() {
					data := make([]byte, 1+i*46_000) // up to 1.06 MiB, past one window
					for j := range data {
						data[j] = byte(i * j)
					}
					st, err := a.Open(context.Background(), ServiceChunks)
					if err != nil {
						t.Errorf("stream %d: Open: %v", i, err)
						return
					}
					defer st.Close()
					msg := binary.LittleEndian.AppendUint64(nil, uint64(len(data)))
					if _, err := st.Write(append(msg, data...)); err != nil {
						t.Errorf("stream %d: Write: %v", i, err)
						return
					}
					got, err := io.ReadAll(st)
					if err != nil {
						t.Errorf("stream %d: ReadAll: %v", i, err)
						return
					}
					if want := sha256.Sum256(data); !bytes.Equal(got, want[:]) {
						t.Errorf("stream %d: got digest %x, want %x", i, got, want)
					}
				})
			}
			wg.Wait()
		})
	}
}

func TestServiceUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name     string
		services []string
		open     string
	}{
		{"not offered", []string{ServiceMeta}, ServiceChunks},
		{"nil services", nil, ServiceMeta},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := sessionPair(t, SessionConfig{}, SessionConfig{Services: tc.services})
			_, err := a.Open(context.Background(), tc.open)
			if !errors.Is(err, ErrServiceUnavailable) {
				t.Fatalf("Open(%q): got %v, want ErrServiceUnavailable", tc.open, err)
			}
			// The session lives on.
			if a.Err() != nil || b.Err() != nil {
				t.Errorf("session ended after refusal: %v / %v", a.Err(), b.Err())
			}
		})
	}
}

func TestOpenBadServiceName(t *testing.T) {
	a, _ := sessionPair(t, SessionConfig{}, SessionConfig{})
	for _, name := range []string{"", strings.Repeat("s", MaxServiceName+1)} {
		if _, err := a.Open(context.Background(), name); err == nil {
			t.Errorf("Open(%d-byte name): got nil error, want one", len(name))
		}
	}
}

func TestPeerCloseGivesEOF(t *testing.T) {
	a, b := sessionPair(t, SessionConfig{}, SessionConfig{Services: []string{"s"}})
	serve(b, func(st *Stream) { st.Write([]byte("bye")) })
	st, err := a.Open(context.Background(), "s")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got, err := io.ReadAll(st)
	if err != nil || string(got) != "bye" {
		t.Fatalf("ReadAll: got %q, %v, want %q, nil", got, err, "bye")
	}
	if n, err := st.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("Read after EOF: got %d, %v, want 0, io.EOF", n, err)
	}
	if _, err := st.Write([]byte("x")); !errors.Is(err, ErrStreamClosed) {
		t.Errorf("Write after peer CLOSE: got %v, want ErrStreamClosed", err)
	}
	st.Close()
	if _, err := st.Read(make([]byte, 1)); !errors.Is(err, ErrStreamClosed) {
		t.Errorf("Read after Close: got %v, want ErrStreamClosed", err)
	}
	if err := st.Close(); err != nil {
		t.Errorf("second Close: got %v, want nil", err)
	}
}

func TestLocalCloseUnblocksStream(t *testing.T) {
	a, b := sessionPair(t, SessionConfig{}, SessionConfig{Services: []string{"s"}})
	serve(b, func(st *Stream) { io.Copy(io.Discard, io.LimitReader(st, 0)); <-b.Done() })
	st, err := a.Open(context.Background(), "s")
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	go func() { _, err := st.Read(make([]byte, 10)); errs <- err }()
	go func() { _, err := st.Write(make([]byte, 3*InitialWindow)); errs <- err }()
	st.Close()
	for range 2 {
		if err := <-errs; !errors.Is(err, ErrStreamClosed) {
			t.Errorf("got %v, want ErrStreamClosed", err)
		}
	}
}

// silentPeer returns a session whose peer reads and discards everything
// and never answers.
func silentPeer(t *testing.T, cfg SessionConfig) *Session {
	t.Helper()
	ca, cb := net.Pipe()
	go io.Copy(io.Discard, cb)
	s := NewSession(ca, cfg)
	t.Cleanup(func() { s.Close(); cb.Close() })
	return s
}

func TestSessionCloseUnblocksEverything(t *testing.T) {
	a, b := sessionPair(t, SessionConfig{Services: []string{"s"}}, SessionConfig{Services: []string{"s"}})
	held := make(chan *Stream, 2)
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	serve(b, func(st *Stream) { held <- st; <-stop }) // never reads
	st, err := a.Open(context.Background(), "s")
	if err != nil {
		t.Fatal(err)
	}
	fullSt := <-held
	idle, err := a.Open(context.Background(), "s") // carries no data
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	peerSt := <-held
	silent := silentPeer(t, SessionConfig{})

	errs := make(chan error, 6)
	go func() { _, err := st.Read(make([]byte, 10)); errs <- fmt.Errorf("Read: %w", err) }()
	go func() { _, err := st.Write(make([]byte, 4*InitialWindow)); errs <- fmt.Errorf("Write: %w", err) }()
	go func() { _, err := a.Accept(); errs <- fmt.Errorf("Accept: %w", err) }()
	go func() { _, err := silent.Open(context.Background(), "s"); errs <- fmt.Errorf("Open: %w", err) }()
	go func() { _, err := peerSt.Read(make([]byte, 10)); errs <- fmt.Errorf("peer Read: %w", err) }()
	go func() { _, err := b.Accept(); errs <- fmt.Errorf("peer Accept: %w", err) }()
	// Close once the Write has filled the window and waits for credit: a
	// Close that cut a frame in half would be an abrupt end, not an orderly
	// one, for the peer.
	waitBuffered(t, fullSt, InitialWindow)
	a.Close()
	silent.Close()
	for range 6 {
		if err := <-errs; !errors.Is(err, ErrSessionClosed) {
			t.Errorf("got %v, want ErrSessionClosed", err)
		}
	}
	<-b.Done()
	if err := b.Err(); !errors.Is(err, ErrSessionClosed) {
		t.Errorf("peer Err() = %v, want ErrSessionClosed", err)
	}
	if err := a.Err(); !errors.Is(err, ErrSessionClosed) {
		t.Errorf("Err() = %v, want ErrSessionClosed", err)
	}
	if _, err := a.Open(context.Background(), "s"); !errors.Is(err, ErrSessionClosed) {
		t.Errorf("Open after Close: got %v, want ErrSessionClosed", err)
	}
}

// waitBuffered waits until st holds n unread bytes.
func waitBuffered(t *testing.T, st *Stream, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		st.mu.Lock()
		got := len(st.buf) - st.off
		st.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream holds %d unread bytes after 10s, want %d", got, n)
		}
	}
}

func TestOpenContextCancel(t *testing.T) {
	s := silentPeer(t, SessionConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Open(ctx, "s"); !errors.Is(err, context.Canceled) {
		t.Errorf("Open: got %v, want context.Canceled", err)
	}
}

func TestStalledStreamDoesNotBlockOthers(t *testing.T) {
	a, b := tcpSessionPair(t, SessionConfig{}, SessionConfig{Services: []string{"stall", "digest"}})
	release := make(chan struct{})
	serve(b, func(st *Stream) {
		if st.Service() == "stall" {
			<-release // does not read until the other stream is done
			io.Copy(io.Discard, st)
			return
		}
		digestHandler(st)
	})
	stall, err := a.Open(context.Background(), "stall")
	if err != nil {
		t.Fatal(err)
	}
	defer stall.Close()
	wrote := make(chan error, 1)
	go func() {
		_, err := stall.Write(make([]byte, 8*InitialWindow))
		wrote <- err
	}()

	st, err := a.Open(context.Background(), "digest")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	data := bytes.Repeat([]byte("shoal"), 1<<20)
	msg := binary.LittleEndian.AppendUint64(nil, uint64(len(data)))
	if _, err := st.Write(append(msg, data...)); err != nil {
		t.Fatalf("Write: %v", err)
	}
	got, err := io.ReadAll(st)
	if want := sha256.Sum256(data); err != nil || !bytes.Equal(got, want[:]) {
		t.Fatalf("digest stream: got %x, %v, want %x", got, err, want)
	}
	select {
	case err := <-wrote:
		t.Fatalf("stalled stream's 8 MiB Write returned (%v) though its reader never read", err)
	default:
	}
	close(release)
	if err := <-wrote; err != nil {
		t.Errorf("stalled stream Write after release: %v", err)
	}
}

func TestLargerWindow(t *testing.T) {
	a, b := sessionPair(t, SessionConfig{Window: 4 << 20}, SessionConfig{Services: []string{"s"}, Window: 3 << 20})
	serve(b, digestHandler)
	st, err := a.Open(context.Background(), "s")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	data := make([]byte, 9<<20)
	for i := range data {
		data[i] = byte(i >> 7)
	}
	if _, err := st.Write(append(binary.LittleEndian.AppendUint64(nil, uint64(len(data))), data...)); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(st)
	if want := sha256.Sum256(data); err != nil || !bytes.Equal(got, want[:]) {
		t.Fatalf("got %x, %v, want %x", got, err, want)
	}
}

func TestDeadline(t *testing.T) {
	a, b := sessionPair(t, SessionConfig{}, SessionConfig{Services: []string{"s"}})
	got := make(chan []byte, 1)
	start := make(chan struct{})
	serve(b, func(st *Stream) { <-start; p, _ := io.ReadAll(st); got <- p })
	st, err := a.Open(context.Background(), "s")
	if err != nil {
		t.Fatal(err)
	}
	st.SetDeadline(time.Now().Add(-time.Second))
	if _, err := st.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Read past deadline: got %v, want os.ErrDeadlineExceeded", err)
	}
	// A stream out of credit times out too.
	st.SetDeadline(time.Now().Add(50 * time.Millisecond))
	n, err := st.Write(make([]byte, 2*InitialWindow))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Write past deadline: got %d, %v, want os.ErrDeadlineExceeded", n, err)
	}
	if n != InitialWindow {
		t.Errorf("Write past deadline wrote %d bytes, want the initial window %d", n, InitialWindow)
	}
	st.SetDeadline(time.Time{})
	close(start)
	if _, err := st.Write([]byte("!")); err != nil {
		t.Errorf("Write after clearing deadline: %v", err)
	}
	st.Close()
	if p := <-got; len(p) != InitialWindow+1 || p[len(p)-1] != '!' {
		t.Errorf("peer got %d bytes, want %d ending in '!'", len(p), InitialWindow+1)
	}
}

// rawPeer is the far end of a session driven byte by byte by a test.
type rawPeer struct {
	conn   net.Conn
	frames chan rawFrame // frames the session sent
}

type rawFrame struct {
	typ     byte
	id      uint32
	payload []byte
}

func newRawPeer(t *testing.T, cfg SessionConfig) (*Session, *rawPeer) {
	t.Helper()
	ca, cb := net.Pipe()
	s := NewSession(ca, cfg)
	p := &rawPeer{conn: cb, frames: make(chan rawFrame, 1024)}
	go func() {
		defer close(p.frames)
		var h [FrameHeaderLen]byte
		for {
			if _, err := io.ReadFull(cb, h[:]); err != nil {
				return
			}
			typ, id, n := parseHeader(h[:])
			pl := make([]byte, n)
			if _, err := io.ReadFull(cb, pl); err != nil {
				return
			}
			select {
			case p.frames <- rawFrame{typ, id, pl}:
			default: // drop what nobody looks at
			}
		}
	}()
	t.Cleanup(func() { s.Close(); cb.Close() })
	return s, p
}

func (p *rawPeer) send(typ byte, id uint32, payload []byte) {
	b := make([]byte, FrameHeaderLen, FrameHeaderLen+len(payload))
	putHeader(b, typ, id, len(payload))
	p.conn.Write(append(b, payload...))
}

// syn opens a stream from the raw side and returns the session's id for it.
func (p *rawPeer) syn(t *testing.T, id uint32, service string) uint32 {
	t.Helper()
	p.send(frameSYN, id, []byte(service))
	for f := range p.frames {
		if f.typ == frameACK && f.id == id && len(f.payload) == 3 {
			return uint32(f.payload[0])<<16 | uint32(f.payload[1])<<8 | uint32(f.payload[2])
		}
	}
	t.Fatal("no ACK")
	return 0
}

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func TestMalformedFramesCloseSession(t *testing.T) {
	for _, tc := range []struct {
		name string
		send func(t *testing.T, p *rawPeer)
		want string // in the reason
	}{
		{"unknown type", func(t *testing.T, p *rawPeer) { p.send(0x77, 1, nil) }, "unknown frame type 0x77"},
		{"stream id 0", func(t *testing.T, p *rawPeer) { p.send(frameSYN, 0, []byte("s")) }, "reserved stream id 0"},
		{"oversize", func(t *testing.T, p *rawPeer) {
			b := make([]byte, FrameHeaderLen)
			putHeader(b, frameOpenerData, 1, MaxFramePayload+1)
			p.conn.Write(b)
		}, "declares"},
		{"data for unknown stream", func(t *testing.T, p *rawPeer) { p.send(frameOpenerData, 42, []byte("x")) }, "DATA(0xA0) for unknown stream 42"},
		{"ack for unknown stream", func(t *testing.T, p *rawPeer) { p.send(frameACK, 9, []byte{0, 0, 1}) }, "ACK for unknown stream"},
		{"syn without service", func(t *testing.T, p *rawPeer) { p.send(frameSYN, 3, nil) }, "names no service"},
		{"close with payload", func(t *testing.T, p *rawPeer) {
			id := p.syn(t, 5, "s")
			p.send(frameOpenerClose, id, []byte{1})
		}, "payload bytes, want 0"},
		{"window overflow", func(t *testing.T, p *rawPeer) {
			id := p.syn(t, 5, "s")
			p.send(frameOpenerWindow, id, be32(MaxWindow))
		}, "overflows credit"},
		{"zero window", func(t *testing.T, p *rawPeer) {
			id := p.syn(t, 5, "s")
			p.send(frameOpenerWindow, id, be32(0))
		}, "zero increment"},
		{"data beyond window", func(t *testing.T, p *rawPeer) {
			id := p.syn(t, 5, "s")
			p.send(frameOpenerData, id, make([]byte, InitialWindow))
			p.send(frameOpenerData, id, []byte("x"))
		}, "window allows 0"},
		{"second close", func(t *testing.T, p *rawPeer) {
			id := p.syn(t, 5, "s")
			p.send(frameOpenerClose, id, nil)
			p.send(frameOpenerClose, id, nil)
		}, "second CLOSE"},
		{"data after close", func(t *testing.T, p *rawPeer) {
			id := p.syn(t, 5, "s")
			p.send(frameOpenerClose, id, nil)
			p.send(frameOpenerData, id, []byte("x"))
		}, "after its CLOSE"},
		{"responder type on responder stream", func(t *testing.T, p *rawPeer) {
			id := p.syn(t, 5, "s")
			p.send(frameResponderData, id, []byte("x"))
		}, "DATA(0x50) for unknown stream"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var logged []string
			s, p := newRawPeer(t, SessionConfig{Services: []string{"s"}, Logf: func(f string, args ...any) {
				mu.Lock()
				logged = append(logged, fmt.Sprintf(f, args...))
				mu.Unlock()
			}})
			tc.send(t, p)
			<-s.Done()
			err := s.Err()
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("Err() = %v, want ErrProtocol", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Err() = %q, want it to contain %q", err, tc.want)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(logged) != 1 || !strings.Contains(logged[0], tc.want) {
				t.Errorf("logged %q, want one line containing %q", logged, tc.want)
			}
		})
	}
}

func TestPeerHangupIsOrderly(t *testing.T) {
	s, p := newRawPeer(t, SessionConfig{})
	p.conn.Close()
	<-s.Done()
	if err := s.Err(); !errors.Is(err, ErrSessionClosed) || errors.Is(err, ErrProtocol) {
		t.Errorf("Err() = %v, want ErrSessionClosed", err)
	}
}

func TestRefusedSYNGetsClose(t *testing.T) {
	_, p := newRawPeer(t, SessionConfig{Services: []string{"s"}})
	p.send(frameSYN, 0x123456, []byte("other"))
	f := <-p.frames
	if f.typ != frameResponderClose || f.id != 0x123456 || len(f.payload) != 0 {
		t.Errorf("got frame %#x id %#x payload %q, want CLOSE(0x52) id 0x123456 without payload", f.typ, f.id, f.payload)
	}
}

// FuzzSession feeds arbitrary bytes to a session as if from its peer. It
// must neither panic nor hang, and must end once the peer hangs up.
func FuzzSession(f *testing.F) {
	hdr := func(typ byte, id uint32, p []byte) []byte {
		b := make([]byte, FrameHeaderLen)
		putHeader(b, typ, id, len(p))
		return append(b, p...)
	}
	f.Add(hdr(frameSYN, 1, []byte("s")))
	f.Add(append(hdr(frameSYN, 1, []byte("s")), hdr(frameOpenerData, 1, []byte("hello"))...))
	f.Add(append(append(hdr(frameSYN, 2, []byte("s")), hdr(frameOpenerWindow, 1, be32(10))...), hdr(frameOpenerClose, 1, nil)...))
	f.Add(hdr(frameACK, 1, []byte{0, 0, 1}))
	f.Add([]byte{0xA0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		ca, cb := net.Pipe()
		s := NewSession(ca, SessionConfig{Services: []string{"s"}})
		defer s.Close()
		go io.Copy(io.Discard, cb)
		serve(s, func(st *Stream) { io.Copy(st, st) })
		cb.Write(in)
		cb.Close()
		<-s.Done()
		if s.Err() == nil {
			t.Fatal("ended session has nil Err")
		}
	})
}

func benchmarkStreams(b *testing.B, pair func(testing.TB, SessionConfig, SessionConfig) (*Session, *Session), streams int) {
	const size = 4 << 20
	a, srv := pair(b, SessionConfig{}, SessionConfig{Services: []string{"sink"}})
	serve(srv, func(st *Stream) {
		// Whole chunks at a time, as a chunk receiver reads them.
		chunk := make([]byte, size)
		for {
			if _, err := io.ReadFull(st, chunk); err != nil {
				return
			}
		}
	})
	sts := make([]*Stream, streams)
	for i := range sts {
		st, err := a.Open(context.Background(), "sink")
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		sts[i] = st
	}
	buf := make([]byte, size)
	for i := range buf {
		buf[i] = byte(rand.Uint32())
	}
	b.SetBytes(size * int64(streams))
	b.ResetTimer()
	for b.Loop() {
		var wg sync.WaitGroup
		for _, st := range sts {
			wg.Go(func() {
				if _, err := st.Write(buf); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
	}
}

func BenchmarkStream(b *testing.B) {
	for _, tr := range []struct {
		name string
		pair func(testing.TB, SessionConfig, SessionConfig) (*Session, *Session)
	}{{"pipe", sessionPair}, {"tcp", tcpSessionPair}} {
		for _, n := range []int{1, 4} {
			b.Run(fmt.Sprintf("%s/streams=%d", tr.name, n), func(b *testing.B) { benchmarkStreams(b, tr.pair, n) })
		}
	}
}

func TestLongestServiceName(t *testing.T) {
	name := strings.Repeat("n", MaxServiceName)
	a, b := sessionPair(t, SessionConfig{}, SessionConfig{Services: []string{name}})
	serve(b, func(st *Stream) { st.Write([]byte(st.Service())) })
	st, err := a.Open(context.Background(), name)
	if err != nil {
		t.Fatalf("Open with a %d-byte name: %v", len(name), err)
	}
	defer st.Close()
	if got, err := io.ReadAll(st); err != nil || string(got) != name {
		t.Errorf("peer saw service %q, %v, want %q", got, err, name)
	}
}

// TestImmediateReplyAndClose checks that a responder's first DATA and
// CLOSE never overtake its ACK.
func TestImmediateReplyAndClose(t *testing.T) {
	a, b := sessionPair(t, SessionConfig{}, SessionConfig{Services: []string{"s"}})
	serve(b, func(st *Stream) { st.Write([]byte("now")) })
	for i := range 200 {
		st, err := a.Open(context.Background(), "s")
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		got, err := io.ReadAll(st)
		st.Close()
		if err != nil || string(got) != "now" {
			t.Fatalf("stream %d: got %q, %v, want %q", i, got, err, "now")
		}
	}
	if a.Err() != nil || b.Err() != nil {
		t.Errorf("session ended: %v / %v", a.Err(), b.Err())
	}
}

func TestAcceptBacklogFull(t *testing.T) {
	a, _ := sessionPair(t, SessionConfig{}, SessionConfig{Services: []string{"s"}}) // nobody accepts
	for i := range acceptBacklog {
		if _, err := a.Open(context.Background(), "s"); err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
	}
	if _, err := a.Open(context.Background(), "s"); !errors.Is(err, ErrServiceUnavailable) {
		t.Errorf("open past the backlog: got %v, want ErrServiceUnavailable", err)
	}
}

// TestReadStraightIntoBuffer has a Read wait with a large buffer, so that
// DATA payloads go into it directly (directRead): one longer than the
// buffer (the rest is buffered), one after that while data is buffered,
// and one that arrives after a Close, which must fail the Read.
func TestReadStraightIntoBuffer(t *testing.T) {
	s, p := newRawPeer(t, SessionConfig{Services: []string{"s"}})
	id := p.syn(t, 1, "s")
	st, err := s.Accept()
	if err != nil {
		t.Fatal(err)
	}
	offered := func() { t.Helper(); awaitOffer(t, st) }
	payload := make([]byte, 250<<10)
	for i := range payload {
		payload[i] = byte(i * 7 / 5)
	}
	reads := make(chan []byte)
	errs := make(chan error, 1)
	go func() {
		for {
			buf := make([]byte, 100<<10)
			n, err := st.Read(buf)
			if err != nil {
				errs <- err
				return
			}
			reads <- buf[:n]
		}
	}()
	var got []byte
	readUpTo := func(n int) {
		t.Helper()
		for len(got) < n {
			select {
			case b := <-reads:
				got = append(got, b...)
			case err := <-errs:
				t.Fatalf("Read: %v", err)
			case <-time.After(10 * time.Second):
				t.Fatalf("read %d bytes of %d sent", len(got), n)
			}
		}
	}
	offered()
	p.send(frameOpenerData, id, payload[:150<<10]) // 100 KiB direct, 50 KiB buffered
	readUpTo(150 << 10)
	offered()
	p.send(frameOpenerData, id, payload[150<<10:])
	readUpTo(len(payload))
	if !bytes.Equal(got, payload) {
		t.Fatal("bytes read differ from those sent")
	}
	offered()
	st.Close()
	if err := <-errs; !errors.Is(err, ErrStreamClosed) {
		t.Fatalf("Read waiting when the stream closed: got %v, want ErrStreamClosed", err)
	}
	// The session goes on: a payload for the closed stream is discarded.
	p.send(frameOpenerData, id, payload[:1000])
	select {
	case <-s.Done():
		t.Fatalf("session ended: %v", s.Err())
	case <-time.After(100 * time.Millisecond):
	}
}

// awaitOffer waits until a Read or ReadFull on st offers its buffer to the
// read loop.
func awaitOffer(t *testing.T, st *Stream) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		st.mu.Lock()
		o := st.direct != nil
		st.mu.Unlock()
		if o {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the read never offered its buffer")
		}
	}
}

// TestReadFullTakesEveryPayload has ReadFull wait for 8 MiB, eight
// windows' worth, before the peer sends them: every payload must go
// straight into the buffer (the stream never buffers any), and the read
// loop must return their bytes as credit as they land, or the sender
// would stall after the first window.
func TestReadFullTakesEveryPayload(t *testing.T) {
	out, st := streamPair(t)
	payload := make([]byte, 8<<20)
	for i := range payload {
		payload[i] = byte(i*7/5 + i>>16)
	}
	sent := make(chan error, 1)
	got := make([]byte, len(payload))
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := st.ReadFull(got)
		done <- result{n, err}
	}()
	awaitOffer(t, st)
	go func() {
		_, err := out.Write(payload)
		sent <- err
	}()
	select {
	case r := <-done:
		if r.err != nil || r.n != len(payload) {
			t.Fatalf("ReadFull: got %d bytes, %v; want %d", r.n, r.err, len(payload))
		}
	case <-time.After(20 * time.Second):
		t.Fatal("ReadFull still waiting: the sender ran out of credit?")
	}
	if err := <-sent; err != nil {
		t.Fatalf("Write: %v", err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatal("bytes read differ from those sent")
	}
	checkNothingBuffered(t, st, "ReadFull's buffer")
}

// streamPair opens a stream from one session of a loopback pair to the
// other and returns the opener's end and the accepter's.
func streamPair(t *testing.T) (opener, accepter *Stream) {
	t.Helper()
	a, b := tcpSessionPair(t, SessionConfig{}, SessionConfig{Services: []string{"s"}})
	accepted := make(chan *Stream, 1)
	go func() {
		st, err := b.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- st
	}()
	opener, err := a.Open(context.Background(), "s")
	if err != nil {
		t.Fatal(err)
	}
	if accepter = <-accepted; accepter == nil {
		t.FailNow()
	}
	t.Cleanup(func() { opener.Close(); accepter.Close() })
	return opener, accepter
}

// checkNothingBuffered fails t if st ever buffered a payload, rather than
// have the read loop put it straight into the reader's memory (into).
func checkNothingBuffered(t *testing.T, st *Stream, into string) {
	t.Helper()
	st.mu.Lock()
	buffered := cap(st.buf)
	st.mu.Unlock()
	if buffered != 0 {
		t.Errorf("the stream buffered payloads (a %d-byte buffer); want them all read straight into %s", buffered, into)
	}
}

// TestReadFullShort checks ReadFull's answer when the peer closes the
// stream before sending enough: the bytes sent, and io.ErrUnexpectedEOF.
func TestReadFullShort(t *testing.T) {
	a, b := tcpSessionPair(t, SessionConfig{}, SessionConfig{Services: []string{"s"}})
	payload := bytes.Repeat([]byte("shoal "), 300<<10) // 1.8 MiB
	serve(b, func(st *Stream) {
		st.Write(payload)
	})
	st, err := a.Open(context.Background(), "s")
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4<<20)
	n, err := st.ReadFull(got)
	if !errors.Is(err, io.ErrUnexpectedEOF) || n != len(payload) {
		t.Fatalf("ReadFull: got %d bytes, %v; want %d, io.ErrUnexpectedEOF", n, err, len(payload))
	}
	if !bytes.Equal(got[:n], payload) {
		t.Fatal("bytes read differ from those sent")
	}
}
