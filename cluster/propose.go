package cluster

// This file groups concurrent proposals into one Raft log entry (group
// commit). hashicorp/raft batches the entries that reach its leader loop
// while it is writing the previous ones, but a write takes only the
// leader's own fsync: the entries arriving while the followers write
// theirs start a log write (two bolt fsyncs on every node) and an
// AppendEntries of their own, one or two entries each. On two cores those
// fsyncs and round trips cost more CPU than the metadata work, so four
// parallel creators got less than twice the rate of one.
//
// The proposer keeps at most one batch in Raft. A proposal that arrives
// while one is in flight waits; when the batch is applied, everything that
// waited goes to Raft as the next batch, one entry holding all of them
// (see encodeBatch). A lone proposer pays nothing: its entry is its
// encoded MetaRequest, sent at once, as before.
// The more proposers wait, the larger the batch, so the fsyncs and round
// trips per request fall as the load grows.
//
// A batch also waits a little for proposers expected back (gather). The
// proposers a batch answers come back with their next request a moment
// later, while the batch of those that waited meanwhile is already in
// Raft: they miss it and wait for the one after. So four creators split
// into two groups taking turns, two per batch, each waiting for two
// commits per request; on three nodes four creators got twice the rate
// of one, not four times. Where a commit takes longer than maxGather (it
// waits for a follower's log write too), a batch therefore starts only
// once as many proposals wait as the last batch served plus those that
// waited for it (the proposers seen at work), or once maxGather has
// passed, whichever comes first. A lone proposer is expected alone and
// never waits. Where a commit is quicker (one node: a local log write,
// about as long as a proposer's way back), the turns keep the log busy
// and waiting would leave it idle, so there is no gathering. A gather
// that runs out of time means the proposers are slower to come back than
// thought: the next batches skip gathering, twice as many after each
// such gather in a row (at most maxGatherSkip), until one succeeds.

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"shoal/wire"
)

// Batch bounds: a batch entry holds at most maxBatchRequests requests and,
// past its first request, at most maxBatchBytes of encoded requests. A
// small file's commit carries its one inline chunk of at most
// MaxInlineChunk bytes, so a batch of ordinary requests stays well below
// a few MiB; a request past maxBatchBytes (a GC mark listing thousands of
// chunks, a commit of many inline chunks) goes alone.
const (
	maxBatchRequests = 64
	maxBatchBytes    = 1 << 20
)

// maxGather bounds how long a batch waits for the proposers expected
// back; after a gather that ran out of time, at most maxGatherSkip
// batches go without one (see above).
const (
	maxGather     = 2 * time.Millisecond
	maxGatherSkip = 64
)

// proposer hands encoded MetaRequests to Raft, in batches (see above).
type proposer struct {
	// apply appends one log entry (raft.Raft.Apply).
	apply func(data []byte, timeout time.Duration) raft.ApplyFuture
	// await waits for a future, or for the node to stop (Node.await).
	await func(raft.Future) error

	// A batch gathers only after a commit that took slowCommit or longer,
	// and waits at most gatherWait (both maxGather but in tests).
	slowCommit, gatherWait time.Duration

	arrived chan struct{} // a proposal joined waiting (buffered, one slot)

	mu       sync.Mutex
	inflight bool        // a batch is in Raft or gathering
	waiting  []*proposal // proposals for the next batch, oldest first
	// Of the last batch: how many proposers it served plus how many waited
	// for it (expected back for the next), how long its commit took, and
	// when it ended.
	width      int
	lastCommit time.Duration
	lastDone   time.Time
	// skip is how many batches go on without gathering; backoff what
	// skip becomes after the next gather that runs out of time.
	skip, backoff int
}

// newProposer returns a proposer that appends entries with apply and
// waits for them with await.
func newProposer(apply func(data []byte, timeout time.Duration) raft.ApplyFuture, await func(raft.Future) error) *proposer {
	return &proposer{apply: apply, await: await, slowCommit: maxGather, gatherWait: maxGather, arrived: make(chan struct{}, 1)}
}

// proposal is one request waiting for its batch to be applied.
type proposal struct {
	data    []byte        // the JSON-encoded MetaRequest
	timeout time.Duration // for Raft's enqueueing; 0 is none
	done    chan struct{} // closed once resp or err is set
	resp    any           // the FSM's answer to this request
	err     error         // the batch's failure
}

// propose appends data (one JSON-encoded MetaRequest) to the log and
// returns the state machine's answer to it once applied, or the error
// that kept its batch from being committed.
func (p *proposer) propose(data []byte, timeout time.Duration) (any, error) {
	pr := &proposal{data: data, timeout: timeout, done: make(chan struct{})}
	p.mu.Lock()
	p.waiting = append(p.waiting, pr)
	if p.inflight {
		select {
		case p.arrived <- struct{}{}:
		default:
		}
		p.mu.Unlock()
		<-pr.done
		return pr.resp, pr.err
	}
	p.inflight = true
	p.mu.Unlock()
	// pr is the oldest waiting proposal, so the first batch run takes it.
	p.run()
	<-pr.done
	return pr.resp, pr.err
}

// run gathers a batch, commits it, answers its proposals, and passes the
// turn on: if proposals waited meanwhile, the next batch runs in a
// goroutine of its own so that this one's caller can go on.
func (p *proposer) run() {
	batch := p.gather()
	start := time.Now()
	p.commit(batch)
	took := time.Since(start)
	p.mu.Lock()
	p.width = len(batch) + len(p.waiting)
	p.lastCommit = took
	p.lastDone = time.Now()
	p.inflight = len(p.waiting) > 0
	more := p.inflight
	p.mu.Unlock()
	if more {
		go p.run()
	}
}

// gather takes the next batch from the waiting proposals, once as many
// wait as the last batch's width, or gatherWait has passed. It does not
// wait if the last commit took less than slowCommit, nor for a proposer
// arriving when the last batch ended long ago (more than gatherWait: it
// is not part of a stream of batches), nor while gathering is skipped.
func (p *proposer) gather() []*proposal {
	p.mu.Lock()
	defer p.mu.Unlock()
	want := min(p.width, maxBatchRequests)
	if len(p.waiting) >= want || p.lastCommit < p.slowCommit || time.Since(p.lastDone) > p.gatherWait {
		return takeBatch(&p.waiting)
	}
	if p.skip > 0 {
		p.skip--
		return takeBatch(&p.waiting)
	}
	timer := time.NewTimer(p.gatherWait)
	defer timer.Stop()
	for len(p.waiting) < want {
		p.mu.Unlock()
		select {
		case <-p.arrived:
			p.mu.Lock()
		case <-timer.C:
			p.mu.Lock()
			p.backoff = min(max(2*p.backoff, 1), maxGatherSkip)
			p.skip = p.backoff
			return takeBatch(&p.waiting)
		}
	}
	p.backoff = 0
	return takeBatch(&p.waiting)
}

// takeBatch removes from *waiting the oldest proposals that fit in one
// batch and returns them.
func takeBatch(waiting *[]*proposal) []*proposal {
	q := *waiting
	n, size := 0, 0
	for n < len(q) && n < maxBatchRequests {
		size += len(q[n].data) + 1
		if n > 0 && size > maxBatchBytes {
			break
		}
		n++
	}
	batch := q[:n:n]
	if n == len(q) {
		*waiting = nil
	} else {
		*waiting = q[n:]
	}
	return batch
}

// commit appends batch as one log entry, waits for it to be applied and
// sets each proposal's answer.
func (p *proposer) commit(batch []*proposal) {
	defer func() {
		for _, pr := range batch {
			close(pr.done)
		}
	}()
	timeout := batch[0].timeout
	for _, pr := range batch[1:] {
		if pr.timeout > 0 && (timeout <= 0 || pr.timeout < timeout) {
			timeout = pr.timeout
		}
	}
	datas := make([][]byte, len(batch))
	for i, pr := range batch {
		datas[i] = pr.data
	}
	f := p.apply(encodeBatch(datas), timeout)
	if err := p.await(f); err != nil {
		for _, pr := range batch {
			pr.err = err
		}
		return
	}
	resp := f.Response()
	if len(batch) == 1 {
		batch[0].resp = resp
		return
	}
	switch r := resp.(type) {
	case batchResponse:
		if len(r) != len(batch) {
			err := fmt.Errorf("state machine answered %d of a batch of %d", len(r), len(batch))
			for _, pr := range batch {
				pr.err = err
			}
			return
		}
		for i, pr := range batch {
			pr.resp = r[i]
		}
	default:
		// The entry as a whole failed (it did not decode): every request
		// in it gets that answer.
		for _, pr := range batch {
			pr.resp = resp
		}
	}
}

// batchEnvelope is the first byte of a batch entry that holds requests
// other than plain JSON (meta envelopes, see wire.EncodeMetaRequest): a
// uvarint count, then that many times a uvarint length and that many bytes
// of one encoded request.
const batchEnvelope = 0x02

// encodeBatch makes one log entry of encoded MetaRequests (each as
// wire.EncodeMetaRequest makes it): a single one is the entry itself;
// several are a JSON array of them if all are plain JSON, else a batch
// envelope.
func encodeBatch(datas [][]byte) []byte {
	if len(datas) == 1 {
		return datas[0]
	}
	size, plain := 1, true
	for _, d := range datas {
		size += len(d) + binary.MaxVarintLen32
		plain = plain && len(d) > 0 && d[0] == '{'
	}
	out := make([]byte, 0, size)
	if !plain {
		out = append(out, batchEnvelope)
		out = binary.AppendUvarint(out, uint64(len(datas)))
		for _, d := range datas {
			out = binary.AppendUvarint(out, uint64(len(d)))
			out = append(out, d...)
		}
		return out
	}
	out = append(out, '[')
	for i, d := range datas {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, d...)
	}
	return append(out, ']')
}

// isBatch reports whether a log entry is a batch (a JSON array or a batch
// envelope) rather than one MetaRequest (a JSON object or a meta
// envelope). encoding/json puts no space before either.
func isBatch(data []byte) bool {
	return len(data) > 0 && (data[0] == '[' || data[0] == batchEnvelope)
}

// decodeBatch decodes a batch entry.
func decodeBatch(data []byte) ([]MetaRequest, error) {
	if data[0] == '[' {
		var reqs []MetaRequest
		if err := json.Unmarshal(data, &reqs); err != nil {
			return nil, fmt.Errorf("decode batch: %w", err)
		}
		return reqs, nil
	}
	rest := data[1:]
	count, n := binary.Uvarint(rest)
	if n <= 0 || count > maxBatchRequests {
		return nil, fmt.Errorf("decode batch envelope: bad count")
	}
	rest = rest[n:]
	reqs := make([]MetaRequest, count)
	for i := range reqs {
		size, n := binary.Uvarint(rest)
		if n <= 0 || size > uint64(len(rest)-n) {
			return nil, fmt.Errorf("decode batch envelope: bad length of request %d", i)
		}
		rest = rest[n:]
		if err := wire.DecodeMetaRequest(rest[:size], &reqs[i]); err != nil {
			return nil, fmt.Errorf("decode batch envelope request %d: %w", i, err)
		}
		rest = rest[size:]
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("decode batch envelope: %d bytes after the last request", len(rest))
	}
	return reqs, nil
}

// batchResponse is the FSM's answer to a batch entry: one answer per
// request, in order.
type batchResponse []*MetaResponse
