package cluster

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
	// OpTimeout bounds one attempt of one chunk operation (default 60s).
	OpTimeout time.Duration
	// MetaTimeout bounds one attempt of one metadata request (default
	// 15s, at most OpTimeout): a node that stops answering (stopped, cut
	// off) costs that long before the client moves to another.
	MetaTimeout time.Duration
	// RetryFor is how long transient failures are retried before the
	// operation fails (default 30s).
	RetryFor time.Duration
	// MetaStreams is how many metadata streams are kept open for concurrent
	// requests (default 16).
	MetaStreams int
	// Logger receives structured logs (default slog.Default()).
	Logger *slog.Logger
	// Secret, if set, is the cluster secret: metadata requests then go on
	// the peer service after proving it (peer.go), which admits the
	// privileged ops (OpJoin, OpLeave). Mounts leave it empty.
	Secret []byte
	// Pin keeps the client on the addresses it was given: it learns no
	// others (to ask one given node, as shoal status does).
	Pin bool
	// Shards makes Put, Get and Has move shards on the shard service
	// (wire.ServiceShards, which needs Secret) instead of chunks on the
	// chunk service: ids are then shard keys, which Get cannot verify
	// (the reader checks the chunk they are joined into). Nodes use it
	// among themselves.
	Shards bool
	// DirectReads makes Get read an erasure-coded chunk's data shards
	// straight from the nodes that hold them, with a grant from the node
	// the client talks to (SHARDS; grant.go), rather than have that node
	// fetch and join them. Whatever goes wrong on that way, Get reads the
	// chunk through the node. Mounts set it.
	DirectReads bool
	// Buffers, if set, supplies the memory of the chunks and shards Get
	// returns, which the caller may Put back once done with them; nil
	// means new buffers (chunkstore.NewBuffer).
	Buffers *chunkstore.Buffers
}

// Client talks to a shoal cluster over the wire: metadata requests on a pool
// of metadata streams, chunks with casync's protocol, one stream per
// transfer, all multiplexed on one connection to one node at a time. It
// implements Metadata and chunkstore.Store and is safe for concurrent use.
//
// Failover: the client knows the addresses it was given and, once
// connected, those of every member the cluster records (OpMembers). When
// the connection breaks, or the node keeps answering "unavailable", it
// moves on to the next address, within the RetryFor budget of the
// operation; any node serves any metadata request (followers forward to the
// leader), so a leader change is only a pause.
type Client struct {
	cfg ClientConfig
	log *slog.Logger

	mu     sync.Mutex
	addrs  []string // given addresses first, then learned members
	cur    int      // index in addrs of the node of sess (or to dial next)
	gen    uint64   // counts sessions, so that one failure moves on once
	sess   *wire.Session
	idle   []*wire.Stream // idle metadata streams of sess
	chunks []*wire.Stream // idle chunk streams of sess, HELLOs exchanged
	closed bool
	slots  chan struct{} // bounds concurrent metadata requests

	id      string // names this client in mutating requests (MetaRequest.Client)
	seqMu   sync.Mutex
	seq     uint64              // numbers them
	waiting map[uint64]struct{} // the numbers still awaiting an answer

	lastGot atomic.Int64 // bytes of data in the last CHUNK Get received

	holders     map[string]*Client // DirectReads: clients of the shard holders by address (directread.go), under mu
	via         map[string]string  // DirectReads: a given address for each member address that is none (learnVia), under mu
	holdersDown sync.Map           // holder address → time.Time until which Get does not read from it directly
}

var (
	_ Metadata         = (*Client)(nil)
	_ chunkstore.Store = (*Client)(nil)
)

// Dial connects to a node of the cluster. addr is one address or several
// separated by commas, tried in order; once connected, the client learns
// the addresses of the other members to fail over to.
func Dial(ctx context.Context, addr string, cfg ClientConfig) (*Client, error) {
	c := newClient(addr, cfg)
	if _, err := c.session(ctx); err != nil {
		return nil, err
	}
	if !cfg.Pin {
		given := slices.Clone(c.addrs)
		members := c.learn(ctx)
		if cfg.DirectReads {
			c.learnVia(ctx, given, members)
		}
	}
	return c, nil
}

// newClient returns a client for the nodes at addr (comma-separated) that
// has not dialled yet.
func newClient(addr string, cfg ClientConfig) *Client {
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = 60 * time.Second
	}
	if cfg.RetryFor <= 0 {
		cfg.RetryFor = 30 * time.Second
	}
	if cfg.MetaTimeout <= 0 {
		cfg.MetaTimeout = 15 * time.Second
	}
	cfg.MetaTimeout = min(cfg.MetaTimeout, cfg.OpTimeout)
	if cfg.MetaStreams <= 0 {
		cfg.MetaStreams = 16
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Client{cfg: cfg, log: cfg.Logger, slots: make(chan struct{}, cfg.MetaStreams), id: rand.Text()}
	for _, a := range strings.Split(addr, ",") {
		if a = strings.TrimSpace(a); a != "" && !slices.Contains(c.addrs, a) {
			c.addrs = append(c.addrs, a)
		}
	}
	if len(c.addrs) == 0 {
		c.addrs = []string{""}
	}
	return c
}

// Addrs returns the node addresses the client knows, the one it uses first.
func (c *Client) Addrs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := append([]string{c.addrs[c.cur]}, c.addrs[:c.cur]...)
	return append(out, c.addrs[c.cur+1:]...)
}

// node returns the address of the node the client talks to now.
func (c *Client) node() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.addrs[c.cur]
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
	for _, h := range c.holders {
		h.Close()
	}
	return nil
}

// session returns the live session, dialling if there is none: the
// current address first, then the others in turn.
func (c *Client) session(ctx context.Context) (*wire.Session, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, fmt.Errorf("client %s: closed: %w", c.addrs[c.cur], net.ErrClosed)
	}
	if c.sess != nil {
		select {
		case <-c.sess.Done():
			// The node went away: the next dial starts with the next one.
			c.sess, c.idle, c.chunks = nil, nil, nil
			c.cur = (c.cur + 1) % len(c.addrs)
			c.gen++
		default:
			return c.sess, nil
		}
	}
	var errs []error
	for range len(c.addrs) {
		addr := c.addrs[c.cur]
		d := net.Dialer{Timeout: 5 * time.Second, KeepAlive: 15 * time.Second}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			c.cur = (c.cur + 1) % len(c.addrs)
			continue
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		c.sess = wire.NewSession(conn, wire.SessionConfig{Logf: func(format string, args ...any) {
			c.log.Warn(fmt.Sprintf(format, args...), "node", addr)
		}})
		c.gen++
		return c.sess, nil
	}
	return nil, fmt.Errorf("dial %s: %w: %w", strings.Join(c.addrs, ","), errors.Join(errs...), ErrUnavailable)
}

// moveOn drops the session of generation gen, if it is still the current
// one, so that the next operation dials the next node.
func (c *Client) moveOn(gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen || c.sess == nil || len(c.addrs) < 2 {
		return
	}
	c.sess.Close()
	c.sess, c.idle = nil, nil
	c.cur = (c.cur + 1) % len(c.addrs)
	c.gen++
	c.log.Info("moving to another node", "node", c.addrs[c.cur])
}

func (c *Client) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
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
			return nil, nil, fmt.Errorf("open %s stream to %s: %w", service, c.node(), err)
		}
		return nil, nil, fmt.Errorf("open %s stream to %s: %w: %w", service, c.node(), err, ErrUnavailable)
	}
	return st, s, nil
}

// retry runs op until it succeeds, fails for good, or transient failures
// have gone on for RetryFor. A transient failure it gives up on comes back
// wrapping only ErrUnavailable (or ErrNotLeader), not the socket errno
// behind it, so that callers mapping errors to errnos see EIO-worthy
// unavailability rather than, say, ECONNREFUSED.
func (c *Client) retry(ctx context.Context, what string, timeout time.Duration, op func(ctx context.Context) error) error {
	deadline := time.Now().Add(c.cfg.RetryFor)
	backoff := 20 * time.Millisecond
	unavailable := 0
	for {
		gen := c.generation()
		actx, cancel := context.WithTimeout(ctx, timeout)
		err := op(actx)
		cancel()
		if err == nil || !IsTransient(err) {
			return err
		}
		// A broken connection moves on at once; a node that keeps saying
		// "unavailable" (no leader where it is: maybe a minority) after a
		// few tries.
		if unavailable++; errors.Is(err, ErrUnavailable) || unavailable%3 == 0 {
			c.moveOn(gen)
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

// Do implements Metadata. A mutating request is sent with this client's
// id and a new sequence number (MetaRequest.Client, Seq), the same on every
// retry, so that the metadata applies it once even if an answer is lost.
func (c *Client) Do(ctx context.Context, req *MetaRequest) (*MetaResponse, error) {
	if !IsReadOnly(req.Op) && req.Client == "" {
		r := *req
		r.Client = c.id
		r.Seq, r.Acked = c.number()
		defer c.answered(r.Seq)
		req = &r
	}
	var resp *MetaResponse
	err := c.retry(ctx, fmt.Sprintf("meta %s", req.Op), c.cfg.MetaTimeout, func(ctx context.Context) error {
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

// number gives a new mutating request its sequence number, and returns
// with it the lowest number still awaiting an answer (MetaRequest.Acked).
func (c *Client) number() (seq, acked uint64) {
	c.seqMu.Lock()
	defer c.seqMu.Unlock()
	c.seq++
	seq, acked = c.seq, c.seq
	if c.waiting == nil {
		c.waiting = map[uint64]struct{}{}
	}
	for s := range c.waiting {
		acked = min(acked, s)
	}
	c.waiting[seq] = struct{}{}
	return seq, acked
}

// answered records that request seq will not be sent again.
func (c *Client) answered(seq uint64) {
	c.seqMu.Lock()
	delete(c.waiting, seq)
	c.seqMu.Unlock()
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
	if err := wire.WriteMetaRequest(st, req); err != nil {
		st.Close()
		return nil, fmt.Errorf("meta %s to %s: %w: %w", req.Op, c.node(), err, ErrUnavailable)
	}
	if err := wire.ReadJSON(st, &resp); err != nil {
		st.Close()
		return nil, fmt.Errorf("meta %s to %s: %w: %w", req.Op, c.node(), err, ErrUnavailable)
	}
	st.SetDeadline(time.Time{})
	c.putMetaStream(s, st)
	if resp.Unavailable {
		return nil, fmt.Errorf("meta %s: %s: %w", req.Op, resp.Reason, ErrNotLeader)
	}
	return &resp, nil
}

// metaStream takes an idle metadata stream or opens one.
func (c *Client) metaStream(ctx context.Context) (*wire.Stream, *wire.Session, error) {
	if st, s, ok := c.takeIdle(&c.idle); ok {
		return st, s, nil
	}
	if c.cfg.Secret == nil {
		return c.open(ctx, wire.ServiceMeta)
	}
	st, s, err := c.open(ctx, wire.ServicePeer)
	if err != nil {
		return nil, nil, err
	}
	if err := peerHello(ctx, st, c.cfg.Secret); err != nil {
		st.Close()
		return nil, nil, fmt.Errorf("peer stream to %s: %w", c.node(), err)
	}
	return st, s, nil
}

func (c *Client) putMetaStream(s *wire.Session, st *wire.Stream) {
	c.keepIdle(&c.idle, s, st)
}

// takeIdle takes the newest stream from pool (c.idle or c.chunks) if the
// session is up and pool holds one.
func (c *Client) takeIdle(pool *[]*wire.Stream) (*wire.Stream, *wire.Session, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess == nil || len(*pool) == 0 {
		return nil, nil, false
	}
	st := (*pool)[len(*pool)-1]
	*pool = (*pool)[:len(*pool)-1]
	return st, c.sess, true
}

// keepIdle puts st, a stream of session s, into pool for reuse; a stream
// of an older session, or one past MetaStreams idle streams in pool, is
// closed instead.
func (c *Client) keepIdle(pool *[]*wire.Stream, s *wire.Session, st *wire.Stream) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess != s || len(*pool) >= c.cfg.MetaStreams {
		st.Close()
		return
	}
	*pool = append(*pool, st)
}

// chunkStreamFeatures is what a client's HELLO on a chunk stream offers:
// both flows, so that one stream serves every kind of transfer.
const chunkStreamFeatures = wire.CasyncPushChunks | wire.CasyncPullChunks

// chunkStream takes an idle chunk stream, or opens one and exchanges
// HELLOs. It sets the stream's deadline from ctx. The caller gives the
// stream back with putChunkStream once a transfer on it completed cleanly,
// and closes it otherwise.
func (c *Client) chunkStream(ctx context.Context) (*wire.Stream, *wire.Session, error) {
	if st, s, ok := c.takeIdle(&c.chunks); ok {
		if dl, ok := ctx.Deadline(); ok {
			st.SetDeadline(dl)
		}
		return st, s, nil
	}
	service := wire.ServiceChunks
	if c.cfg.Shards {
		service = wire.ServiceShards
	}
	st, s, err := c.open(ctx, service)
	if err != nil {
		return nil, nil, err
	}
	if c.cfg.Shards {
		if err := peerHello(ctx, st, c.cfg.Secret); err != nil {
			st.Close()
			return nil, nil, fmt.Errorf("shard stream to %s: %w", c.node(), err)
		}
	}
	if dl, ok := ctx.Deadline(); ok {
		st.SetDeadline(dl)
	}
	if err := wire.WriteCasync(st, &wire.Hello{Features: chunkStreamFeatures}); err != nil {
		st.Close()
		return nil, nil, fmt.Errorf("chunk hello to %s: %w: %w", c.node(), err, ErrUnavailable)
	}
	m, err := wire.ReadCasync(st)
	if err != nil {
		st.Close()
		return nil, nil, fmt.Errorf("chunk hello from %s: %w: %w", c.node(), err, ErrUnavailable)
	}
	if _, ok := m.(*wire.Hello); !ok {
		st.Close()
		return nil, nil, fmt.Errorf("chunk hello from %s: got %T: %w", c.node(), m, syscall.EPROTO)
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
	c.keepIdle(&c.chunks, s, st)
}

// awaitGoodbye reads the GOODBYE that ends a push on st and puts the
// stream back for reuse; anything else closes it.
func (c *Client) awaitGoodbye(s *wire.Session, st *wire.Stream, what string) error {
	m, err := c.readChunkReply(st, what)
	if err != nil {
		st.Close()
		return err
	}
	if _, ok := m.(*wire.Goodbye); !ok {
		st.Close()
		return fmt.Errorf("%s: node %s answered %T: %w", what, c.node(), m, syscall.EPROTO)
	}
	c.putChunkStream(s, st)
	return nil
}

// readChunkReply reads one message answering a chunk operation, turning
// ABORT and stream failures into errors.
func (c *Client) readChunkReply(st *wire.Stream, what string) (wire.CasyncMessage, error) {
	m, err := wire.ReadCasyncAlloc(st, c.cfg.Buffers.Get)
	return c.chunkReply(m, err, what)
}

// chunkReply turns a failed read of a reply to a chunk operation, and an
// ABORT, into errors.
func (c *Client) chunkReply(m wire.CasyncMessage, err error, what string) (wire.CasyncMessage, error) {
	if err != nil {
		return nil, fmt.Errorf("%s from %s: %w: %w", what, c.node(), err, ErrUnavailable)
	}
	if a, ok := m.(*wire.Abort); ok {
		err := syscall.Errno(a.Errno)
		if a.Errno == 0 {
			err = syscall.EIO
		}
		switch err {
		case syscall.ENOSPC:
			return nil, fmt.Errorf("%s: node %s: %s: %w", what, c.node(), a.Reason, chunkstore.ErrNoSpace)
		case syscall.EAGAIN:
			// The node could not record the chunk's placement yet: no
			// leader ready (an election), or the chunk is being
			// collected. Both pass: the operation is retried.
			return nil, fmt.Errorf("%s: node %s: %s: %w: %w", what, c.node(), a.Reason, err, ErrNotLeader)
		}
		return nil, fmt.Errorf("%s: node %s: %s: %w", what, c.node(), a.Reason, err)
	}
	return m, nil
}

// Put implements chunkstore.Store: it pushes one chunk (INDEX, INDEX_EOF;
// the node requests it unless it already has it; CHUNK) and returns once
// the node says GOODBYE, meaning the chunk is durable.
func (c *Client) Put(ctx context.Context, id chunkstore.ID, data []byte) error {
	what := "put chunk " + id.String()
	return c.retry(ctx, what, c.cfg.OpTimeout, func(ctx context.Context) error {
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
			return fmt.Errorf("%s: node %s answered %T: %w", what, c.node(), m, syscall.EPROTO)
		}
		for _, want := range req.IDs {
			var reply wire.CasyncMessage = &wire.Missing{ID: want}
			if want == id {
				reply = &wire.Chunk{ID: id, Data: data}
			}
			if err := wire.WriteCasync(st, reply); err != nil {
				st.Close()
				return fmt.Errorf("%s to %s: %w: %w", what, c.node(), err, ErrUnavailable)
			}
		}
		return c.awaitGoodbye(s, st, what)
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
			return nil, nil, nil, fmt.Errorf("%s to %s: %w: %w", what, c.node(), err, ErrUnavailable)
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

// Get implements chunkstore.Store: a REQUEST answered by CHUNK (verified
// against id) or MISSING. The REQUEST has casync's HIGH_PRIORITY flag
// unless ctx is marked chunkstore.Background. With DirectReads it also
// has the DIRECT flag, and a node that answers SHARDS for an
// erasure-coded chunk has the data shards read from their holders
// (readDirect); if that fails, the chunk is asked for again without the
// flag.
func (c *Client) Get(ctx context.Context, id chunkstore.ID) ([]byte, error) {
	direct := c.cfg.DirectReads && !c.cfg.Shards
	data, sh, err := c.get(ctx, id, direct)
	if sh != nil {
		if data, ok := c.readDirect(ctx, sh); ok {
			return data, nil
		}
		data, _, err = c.get(ctx, id, false)
	}
	return data, err
}

// get makes the REQUEST of Get, with the DIRECT flag if direct, and
// returns the chunk, or the SHARDS the node answered instead.
func (c *Client) get(ctx context.Context, id chunkstore.ID, direct bool) (data []byte, sh *wire.Shards, err error) {
	what := "get chunk " + id.String()
	err = c.retry(ctx, what, c.cfg.OpTimeout, func(ctx context.Context) error {
		req := &wire.Request{Flags: readFlags(ctx), IDs: [][32]byte{id}}
		if direct {
			req.Flags |= wire.CasyncRequestDirect
		}
		// With Buffers set, a buffer of the size of the last chunk
		// received is offered for the data: a file's chunks, mostly of one
		// size, go from the connection straight into it.
		var body []byte
		if n := c.lastGot.Load(); n >= minReplyBody && c.cfg.Buffers != nil {
			body = c.cfg.Buffers.Get(int(n))
			body = body[:cap(body)]
		}
		reply, inBody, err := c.pull(ctx, what, req, id, body)
		if !inBody {
			c.cfg.Buffers.Put(body)
		}
		if err != nil {
			return err
		}
		m, ok := reply.(*wire.Chunk)
		if !ok {
			sh = reply.(*wire.Shards)
			return nil
		}
		c.lastGot.Store(int64(len(m.Data)))
		if inBody {
			m.Data = c.cfg.Buffers.Fit(m.Data)
		}
		// The node checked the data against its id when it was stored and
		// against its CRC-32C when it read it back; the CRC-32C it was
		// sent with (checked by ReadCasync) covers the way here. Only a
		// chunk sent without one is hashed again.
		if m.Flags&wire.CasyncChunkCRC32C == 0 && !c.cfg.Shards && chunkstore.Sum(m.Data) != id {
			return fmt.Errorf("%s from %s: %w", what, c.node(), chunkstore.ErrCorrupt)
		}
		data = m.Data
		return nil
	})
	return data, sh, err
}

// readFlags are the flags of a REQUEST made with ctx: CHECKSUM, and
// HIGH_PRIORITY unless ctx is marked chunkstore.Background.
func readFlags(ctx context.Context) uint64 {
	if chunkstore.IsBackground(ctx) {
		return wire.CasyncRequestChecksum
	}
	return wire.CasyncRequestHighPrio | wire.CasyncRequestChecksum
}

// minReplyBody is the smallest chunk for which Get offers memory for the
// data before the reply arrives: below a MiB Buffers hands out new
// memory each time, and such chunks are cheap to copy.
const minReplyBody = 1 << 20

// pull sends req, which asks for the one chunk (or shard) id, on a chunk
// stream and reads the answer: a *wire.Chunk, its data in body if it fits
// (wire.ReadCasyncReply; inBody reports that it did, and that body is no
// longer the caller's to reuse), else in memory from Buffers; or, to a
// REQUEST with CasyncRequestDirect, possibly a *wire.Shards. MISSING
// gives an error wrapping chunkstore.ErrNotFound.
func (c *Client) pull(ctx context.Context, what string, req wire.CasyncMessage, id [32]byte, body []byte) (reply wire.CasyncMessage, inBody bool, err error) {
	st, s, err := c.chunkStream(ctx)
	if err != nil {
		return nil, false, err
	}
	if err := wire.WriteCasync(st, req); err != nil {
		st.Close()
		return nil, false, fmt.Errorf("%s to %s: %w: %w", what, c.node(), err, ErrUnavailable)
	}
	reply, inBody, err = wire.ReadCasyncReply(st, body, c.cfg.Buffers.Get)
	reply, err = c.chunkReply(reply, err, what)
	if err != nil {
		st.Close()
		return nil, false, err
	}
	direct := false
	if r, ok := req.(*wire.Request); ok {
		direct = r.Flags&wire.CasyncRequestDirect != 0
	}
	switch reply := reply.(type) {
	case *wire.Chunk:
		// The exchange is complete whatever the contents: the stream is
		// fit for the next transfer.
		c.putChunkStream(s, st)
		switch {
		case reply.ID != id:
			err = fmt.Errorf("%s: node %s sent chunk %s: %w", what, c.node(), chunkstore.ID(reply.ID), syscall.EPROTO)
		case reply.Flags&wire.CasyncChunkCompressed != 0:
			err = fmt.Errorf("%s: node %s sent a compressed chunk unasked: %w", what, c.node(), syscall.EPROTO)
		default:
			return reply, inBody, nil
		}
		if !inBody {
			c.cfg.Buffers.Put(reply.Data)
		}
		return nil, inBody, err
	case *wire.Shards:
		c.putChunkStream(s, st)
		if !direct || reply.ID != id {
			return nil, false, fmt.Errorf("%s: node %s sent shards of chunk %s unasked: %w", what, c.node(), chunkstore.ID(reply.ID), syscall.EPROTO)
		}
		return reply, false, nil
	case *wire.Missing:
		c.putChunkStream(s, st)
		return nil, false, fmt.Errorf("%s from %s: %w", what, c.node(), chunkstore.ErrNotFound)
	default:
		st.Close()
		return nil, false, fmt.Errorf("%s: node %s answered %T: %w", what, c.node(), reply, syscall.EPROTO)
	}
}

// VerifiesGets reports that every chunk Get returns is known to match its
// id (see fs.VerifyingChunks): hashed here, or checked by the node and
// sent with a CRC-32C that ReadCasync verified. A reader need not hash it
// again.
func (c *Client) VerifiesGets() bool { return !c.cfg.Shards }

// Has implements chunkstore.Store by pushing an index of just id: the node
// requests the chunk only if it lacks it, and the client answers MISSING.
func (c *Client) Has(ctx context.Context, id chunkstore.ID) (bool, error) {
	what := "has chunk " + id.String()
	var has bool
	err := c.retry(ctx, what, c.cfg.OpTimeout, func(ctx context.Context) error {
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
			return fmt.Errorf("%s: node %s answered %T: %w", what, c.node(), m, syscall.EPROTO)
		}
		has = true
		for _, want := range req.IDs {
			has = has && want != id
			if err := wire.WriteCasync(st, &wire.Missing{ID: want}); err != nil {
				st.Close()
				return fmt.Errorf("%s to %s: %w: %w", what, c.node(), err, ErrUnavailable)
			}
		}
		return c.awaitGoodbye(s, st, what)
	})
	return has, err
}
