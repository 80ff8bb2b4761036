package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	"shoal/chunkstore"
	"shoal/wire"
)

// ErrUnavailable means no node could be reached, or the connection to it
// broke. It is transient: a retry may succeed.
var ErrUnavailable = errors.New("cluster unavailable")

// IsTransient reports whether err may go away if the operation is retried:
// a broken or refused connection, or a node that is not (yet) the leader.
func IsTransient(err error) bool {
	return errors.Is(err, ErrUnavailable) || errors.Is(err, ErrNotLeader)
}

// ClientConfig tunes a Client. The zero value is usable.
type ClientConfig struct {
	// OpTimeout bounds one attempt of one operation (default 60s).
	OpTimeout time.Duration
	// RetryFor is how long transient failures are retried before the
	// operation fails (default 30s).
	RetryFor time.Duration
	// MetaStreams is how many metadata streams are kept open for concurrent
	// requests (default 16).
	MetaStreams int
	// Logger receives structured logs (default slog.Default()).
	Logger *slog.Logger
}

// Client talks to a shoal cluster over the wire: metadata requests on a pool
// of metadata streams, chunks with casync's protocol, one stream per
// transfer, all multiplexed on one connection. It implements Metadata and
// chunkstore.Store and is safe for concurrent use. A broken connection is
// redialled on the next operation.
type Client struct {
	addr string
	cfg  ClientConfig
	log  *slog.Logger

	mu     sync.Mutex
	sess   *wire.Session
	idle   []*wire.Stream // idle metadata streams of sess
	chunks []*wire.Stream // idle chunk streams of sess, HELLOs exchanged
	closed bool
	slots  chan struct{} // bounds concurrent metadata requests
}

var (
	_ Metadata         = (*Client)(nil)
	_ chunkstore.Store = (*Client)(nil)
)

// Dial connects to the node at addr.
func Dial(ctx context.Context, addr string, cfg ClientConfig) (*Client, error) {
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = 60 * time.Second
	}
	if cfg.RetryFor <= 0 {
		cfg.RetryFor = 30 * time.Second
	}
	if cfg.MetaStreams <= 0 {
		cfg.MetaStreams = 16
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Client{addr: addr, cfg: cfg, log: cfg.Logger, slots: make(chan struct{}, cfg.MetaStreams)}
	if _, err := c.session(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Close closes the connection. Operations in flight fail.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.sess != nil {
		c.sess.Close()
		c.sess = nil
	}
	return nil
}

// session returns the live session, dialling if there is none.
func (c *Client) session(ctx context.Context) (*wire.Session, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, fmt.Errorf("client %s: closed: %w", c.addr, net.ErrClosed)
	}
	if c.sess != nil {
		select {
		case <-c.sess.Done():
			c.sess, c.idle, c.chunks = nil, nil, nil
		default:
			return c.sess, nil
		}
	}
	d := net.Dialer{Timeout: 5 * time.Second, KeepAlive: 15 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w: %w", c.addr, err, ErrUnavailable)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	c.sess = wire.NewSession(conn, wire.SessionConfig{Logf: func(format string, args ...any) {
		c.log.Warn(fmt.Sprintf(format, args...), "node", c.addr)
	}})
	return c.sess, nil
}

// open opens a stream to service on the live session.
func (c *Client) open(ctx context.Context, service string) (*wire.Stream, *wire.Session, error) {
	s, err := c.session(ctx)
	if err != nil {
		return nil, nil, err
	}
	st, err := s.Open(ctx, service)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("open %s stream to %s: %w", service, c.addr, err)
		}
		return nil, nil, fmt.Errorf("open %s stream to %s: %w: %w", service, c.addr, err, ErrUnavailable)
	}
	return st, s, nil
}

// retry runs op until it succeeds, fails for good, or transient failures
// have gone on for RetryFor. A transient failure it gives up on comes back
// wrapping only ErrUnavailable (or ErrNotLeader), not the socket errno
// behind it, so that callers mapping errors to errnos see EIO-worthy
// unavailability rather than, say, ECONNREFUSED.
func (c *Client) retry(ctx context.Context, what string, op func(ctx context.Context) error) error {
	deadline := time.Now().Add(c.cfg.RetryFor)
	backoff := 20 * time.Millisecond
	for {
		actx, cancel := context.WithTimeout(ctx, c.cfg.OpTimeout)
		err := op(actx)
		cancel()
		if err == nil || !IsTransient(err) {
			return err
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			sentinel := ErrUnavailable
			if !errors.Is(err, ErrUnavailable) {
				sentinel = ErrNotLeader
			}
			return fmt.Errorf("%s: gave up after %s: %v: %w", what, c.cfg.RetryFor, err, sentinel)
		}
		c.log.Warn("retrying", "op", what, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// Do implements Metadata.
func (c *Client) Do(ctx context.Context, req *MetaRequest) (*MetaResponse, error) {
	var resp *MetaResponse
	err := c.retry(ctx, fmt.Sprintf("meta op %d", req.Op), func(ctx context.Context) error {
		var err error
		resp, err = c.doOnce(ctx, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := ResponseError(req, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

func (c *Client) doOnce(ctx context.Context, req *MetaRequest) (*MetaResponse, error) {
	select {
	case c.slots <- struct{}{}:
		defer func() { <-c.slots }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	st, s, err := c.metaStream(ctx)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		st.SetDeadline(dl)
	}
	var resp MetaResponse
	if err := wire.WriteJSON(st, req); err != nil {
		st.Close()
		return nil, fmt.Errorf("meta op %d to %s: %w: %w", req.Op, c.addr, err, ErrUnavailable)
	}
	if err := wire.ReadJSON(st, &resp); err != nil {
		st.Close()
		return nil, fmt.Errorf("meta op %d to %s: %w: %w", req.Op, c.addr, err, ErrUnavailable)
	}
	st.SetDeadline(time.Time{})
	c.putMetaStream(s, st)
	if resp.Unavailable {
		return nil, fmt.Errorf("meta op %d: %s: %w", req.Op, resp.Reason, ErrNotLeader)
	}
	return &resp, nil
}

// metaStream takes an idle metadata stream or opens one.
func (c *Client) metaStream(ctx context.Context) (*wire.Stream, *wire.Session, error) {
	c.mu.Lock()
	if c.sess != nil && len(c.idle) > 0 {
		st := c.idle[len(c.idle)-1]
		c.idle = c.idle[:len(c.idle)-1]
		s := c.sess
		c.mu.Unlock()
		return st, s, nil
	}
	c.mu.Unlock()
	return c.open(ctx, wire.ServiceMeta)
}

func (c *Client) putMetaStream(s *wire.Session, st *wire.Stream) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess != s || len(c.idle) >= c.cfg.MetaStreams {
		st.Close()
		return
	}
	c.idle = append(c.idle, st)
}

// chunkStreamFeatures is what a client's HELLO on a chunk stream offers:
// both flows, so that one stream serves every kind of transfer.
const chunkStreamFeatures = wire.CasyncPushChunks | wire.CasyncPullChunks

// chunkStream takes an idle chunk stream, or opens one and exchanges
// HELLOs. It sets the stream's deadline from ctx. The caller gives the
// stream back with putChunkStream once a transfer on it completed cleanly,
// and closes it otherwise.
func (c *Client) chunkStream(ctx context.Context) (*wire.Stream, *wire.Session, error) {
	c.mu.Lock()
	if c.sess != nil && len(c.chunks) > 0 {
		st := c.chunks[len(c.chunks)-1]
		c.chunks = c.chunks[:len(c.chunks)-1]
		s := c.sess
		c.mu.Unlock()
		if dl, ok := ctx.Deadline(); ok {
			st.SetDeadline(dl)
		}
		return st, s, nil
	}
	c.mu.Unlock()
	st, s, err := c.open(ctx, wire.ServiceChunks)
	if err != nil {
		return nil, nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		st.SetDeadline(dl)
	}
	if err := wire.WriteCasync(st, &wire.Hello{Features: chunkStreamFeatures}); err != nil {
		st.Close()
		return nil, nil, fmt.Errorf("chunk hello to %s: %w: %w", c.addr, err, ErrUnavailable)
	}
	m, err := wire.ReadCasync(st)
	if err != nil {
		st.Close()
		return nil, nil, fmt.Errorf("chunk hello from %s: %w: %w", c.addr, err, ErrUnavailable)
	}
	if _, ok := m.(*wire.Hello); !ok {
		st.Close()
		return nil, nil, fmt.Errorf("chunk hello from %s: got %T: %w", c.addr, m, syscall.EPROTO)
	}
	return st, s, nil
}

// putChunkStream keeps st, a chunk stream of session s whose last transfer
// completed, for reuse; a stream of an older session, or one past
// MetaStreams idle chunk streams, is closed instead. Reuse spares a
// transfer the stream's opening round trips and both ends the regrowth of
// the stream's buffers.
func (c *Client) putChunkStream(s *wire.Session, st *wire.Stream) {
	st.SetDeadline(time.Time{})
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess != s || len(c.chunks) >= c.cfg.MetaStreams {
		st.Close()
		return
	}
	c.chunks = append(c.chunks, st)
}

// readChunkReply reads one message answering a chunk operation, turning
// ABORT and stream failures into errors.
func (c *Client) readChunkReply(st *wire.Stream, what string) (wire.CasyncMessage, error) {
	m, err := wire.ReadCasync(st)
	if err != nil {
		return nil, fmt.Errorf("%s from %s: %w: %w", what, c.addr, err, ErrUnavailable)
	}
	if a, ok := m.(*wire.Abort); ok {
		err := syscall.Errno(a.Errno)
		if a.Errno == 0 {
			err = syscall.EIO
		}
		if err == syscall.ENOSPC {
			return nil, fmt.Errorf("%s: node %s: %s: %w", what, c.addr, a.Reason, chunkstore.ErrNoSpace)
		}
		return nil, fmt.Errorf("%s: node %s: %s: %w", what, c.addr, a.Reason, err)
	}
	return m, nil
}

// Put implements chunkstore.Store: it pushes one chunk (INDEX, INDEX_EOF;
// the node requests it unless it already has it; CHUNK) and returns once
// the node says GOODBYE, meaning the chunk is durable.
func (c *Client) Put(ctx context.Context, id chunkstore.ID, data []byte) error {
	what := "put chunk " + id.String()
	return c.retry(ctx, what, func(ctx context.Context) error {
		st, s, m, err := c.offerChunk(ctx, what, id, indexSize(len(data)))
		if err != nil {
			return err
		}
		if _, ok := m.(*wire.Goodbye); ok {
			c.putChunkStream(s, st)
			return nil // the node had it already
		}
		req, ok := m.(*wire.Request)
		if !ok {
			st.Close()
			return fmt.Errorf("%s: node %s answered %T: %w", what, c.addr, m, syscall.EPROTO)
		}
		for _, want := range req.IDs {
			var reply wire.CasyncMessage = &wire.Missing{ID: want}
			if want == id {
				reply = &wire.Chunk{ID: id, Data: data}
			}
			if err := wire.WriteCasync(st, reply); err != nil {
				st.Close()
				return fmt.Errorf("%s to %s: %w: %w", what, c.addr, err, ErrUnavailable)
			}
		}
		if m, err = c.readChunkReply(st, what); err != nil {
			st.Close()
			return err
		}
		if _, ok := m.(*wire.Goodbye); !ok {
			st.Close()
			return fmt.Errorf("%s: node %s answered %T: %w", what, c.addr, m, syscall.EPROTO)
		}
		c.putChunkStream(s, st)
		return nil
	})
}

// offerChunk takes a chunk stream and pushes an index naming just id, then
// returns the stream, its session and the node's first answer: GOODBYE if
// it has the chunk, REQUEST if it wants it. The caller gives the stream
// back (putChunkStream) or closes it.
func (c *Client) offerChunk(ctx context.Context, what string, id chunkstore.ID, size uint64) (*wire.Stream, *wire.Session, wire.CasyncMessage, error) {
	st, s, err := c.chunkStream(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	idx := wire.EncodeIndex([]wire.IndexEntry{{ID: id, Size: size}})
	for _, m := range []wire.CasyncMessage{&wire.Index{Data: idx}, &wire.IndexEOF{}} {
		if err := wire.WriteCasync(st, m); err != nil {
			st.Close()
			return nil, nil, nil, fmt.Errorf("%s to %s: %w: %w", what, c.addr, err, ErrUnavailable)
		}
	}
	m, err := c.readChunkReply(st, what)
	if err != nil {
		st.Close()
		return nil, nil, nil, err
	}
	return st, s, m, nil
}

// indexSize is the size a chunk of n bytes has in a pushed index. casync
// indexes cannot hold empty entries, so the empty chunk is indexed with size
// 1 (PROTOCOL.md); its CHUNK message still carries zero bytes.
func indexSize(n int) uint64 { return uint64(max(n, 1)) }

// Get implements chunkstore.Store: a high-priority REQUEST answered by
// CHUNK (verified against id) or MISSING.
func (c *Client) Get(ctx context.Context, id chunkstore.ID) ([]byte, error) {
	what := "get chunk " + id.String()
	var data []byte
	err := c.retry(ctx, what, func(ctx context.Context) error {
		st, s, err := c.chunkStream(ctx)
		if err != nil {
			return err
		}
		if err := wire.WriteCasync(st, &wire.Request{Flags: wire.CasyncRequestHighPrio, IDs: [][32]byte{id}}); err != nil {
			st.Close()
			return fmt.Errorf("%s to %s: %w: %w", what, c.addr, err, ErrUnavailable)
		}
		m, err := c.readChunkReply(st, what)
		if err != nil {
			st.Close()
			return err
		}
		switch m.(type) {
		case *wire.Chunk, *wire.Missing:
			// The exchange is complete whatever the contents: the stream
			// is fit for the next transfer.
			c.putChunkStream(s, st)
		default:
			st.Close()
		}
		switch m := m.(type) {
		case *wire.Chunk:
			if m.ID != id {
				return fmt.Errorf("%s: node %s sent chunk %s: %w", what, c.addr, chunkstore.ID(m.ID), syscall.EPROTO)
			}
			if m.Flags&wire.CasyncChunkCompressed != 0 {
				return fmt.Errorf("%s: node %s sent a compressed chunk unasked: %w", what, c.addr, syscall.EPROTO)
			}
			if chunkstore.Sum(m.Data) != id {
				return fmt.Errorf("%s from %s: %w", what, c.addr, chunkstore.ErrCorrupt)
			}
			data = m.Data
			return nil
		case *wire.Missing:
			return fmt.Errorf("%s from %s: %w", what, c.addr, chunkstore.ErrNotFound)
		default:
			return fmt.Errorf("%s: node %s answered %T: %w", what, c.addr, m, syscall.EPROTO)
		}
	})
	return data, err
}

// VerifiesGets reports that Get checks every chunk it returns against its
// id (see fs.VerifyingChunks): a reader need not hash it again.
func (c *Client) VerifiesGets() bool { return true }

// Has implements chunkstore.Store by pushing an index of just id: the node
// requests the chunk only if it lacks it, and the client answers MISSING.
func (c *Client) Has(ctx context.Context, id chunkstore.ID) (bool, error) {
	what := "has chunk " + id.String()
	var has bool
	err := c.retry(ctx, what, func(ctx context.Context) error {
		// The size is not known, nor needed: the chunk is never sent.
		st, s, m, err := c.offerChunk(ctx, what, id, indexSize(0))
		if err != nil {
			return err
		}
		if _, ok := m.(*wire.Goodbye); ok {
			c.putChunkStream(s, st)
			has = true
			return nil
		}
		req, ok := m.(*wire.Request)
		if !ok {
			st.Close()
			return fmt.Errorf("%s: node %s answered %T: %w", what, c.addr, m, syscall.EPROTO)
		}
		has = true
		for _, want := range req.IDs {
			has = has && want != id
			if err := wire.WriteCasync(st, &wire.Missing{ID: want}); err != nil {
				st.Close()
				return fmt.Errorf("%s to %s: %w: %w", what, c.addr, err, ErrUnavailable)
			}
		}
		if m, err = c.readChunkReply(st, what); err != nil {
			st.Close()
			return err
		}
		if _, ok := m.(*wire.Goodbye); !ok {
			st.Close()
			return fmt.Errorf("%s: node %s answered %T: %w", what, c.addr, m, syscall.EPROTO)
		}
		c.putChunkStream(s, st)
		return nil
	})
	return has, err
}
