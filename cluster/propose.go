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

// proposer hands encoded MetaRequests to Raft, in batches (see above).
type proposer struct {
	// apply appends one log entry (raft.Raft.Apply).
	apply func(data []byte, timeout time.Duration) raft.ApplyFuture
	// await waits for a future, or for the node to stop (Node.await).
	await func(raft.Future) error

	mu       sync.Mutex
	inflight bool        // a batch is in Raft
	waiting  []*proposal // proposals for the next batch, oldest first
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
	if p.inflight {
		p.waiting = append(p.waiting, pr)
		p.mu.Unlock()
		<-pr.done
		return pr.resp, pr.err
	}
	p.inflight = true
	p.mu.Unlock()
	p.run([]*proposal{pr})
	return pr.resp, pr.err
}

// run commits batch, answers its proposals, and passes the turn on: the
// proposals that waited meanwhile become the next batch, run in a
// goroutine of its own so that this one's caller can go on.
func (p *proposer) run(batch []*proposal) {
	p.commit(batch)
	p.mu.Lock()
	next := takeBatch(&p.waiting)
	p.inflight = len(next) > 0
	p.mu.Unlock()
	if len(next) > 0 {
		go p.run(next)
	}
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
