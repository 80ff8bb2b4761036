package cluster

// This file holds the memory of recent answers that makes a retried
// request harmless: a client that lost an answer (its node died, the
// leader changed) sends the same request again, and must get the first
// answer, not a second application (a create's EEXIST, an unlink's
// ENOENT, a rename undone).

import (
	"maps"
	"slices"

	"shoal/wire"
)

// stMaxClientID bounds MetaRequest.Client.
const stMaxClientID = 64

// stReplies maps a client to its recent answers. It is part of the
// state: replicas must forget alike, so forgetting goes by the requests
// (their Acked and Now), never a clock.
type stReplies map[string]*stClient

// stClient is one client's remembered answers: by sequence number, and
// the sequence numbers in increasing order, which is the order they are
// forgotten in.
type stClient struct {
	bySeq map[uint64]stReply
	seqs  []uint64 // sorted; seqs[head:] are remembered
	head  int
}

// stReply is one remembered answer and the Now of its request.
type stReply struct {
	now  int64
	resp *MetaResponse
}

// lookup returns the remembered answer to req, if any.
func (r stReplies) lookup(req *MetaRequest) (*MetaResponse, bool) {
	c := r[req.Client]
	if c == nil {
		return nil, false
	}
	rep, ok := c.bySeq[req.Seq]
	if !ok {
		return nil, false
	}
	resp := *rep.resp
	return &resp, true
}

// add remembers the answer to request seq of client, keeping seqs sorted.
func (r stReplies) add(client string, seq uint64, rep stReply) {
	c := r[client]
	if c == nil {
		c = &stClient{bySeq: map[uint64]stReply{}}
		r[client] = c
	}
	if _, ok := c.bySeq[seq]; ok {
		return
	}
	c.bySeq[seq] = rep
	live := c.seqs[c.head:]
	if n := len(live); n == 0 || live[n-1] < seq {
		c.seqs = append(c.seqs, seq) // the usual case: a new request
		return
	}
	i, _ := slices.BinarySearch(live, seq)
	c.seqs = slices.Insert(c.seqs, c.head+i, seq)
}

// record remembers resp as the answer to req, then forgets the client's
// answers below req.Acked and those older than wire.ReplyMemory before
// req.Now. Every 4096th record of a client also prunes the other clients
// by age, so that clients gone quiet are forgotten too.
func (r stReplies) record(req *MetaRequest, resp *MetaResponse) {
	if len(req.Client) > stMaxClientID {
		return
	}
	c := *resp
	r.add(req.Client, req.Seq, stReply{now: req.Now, resp: &c})
	cutoff := req.Now - wire.ReplyMemory
	r.prune(req.Client, req.Acked, cutoff)
	if req.Seq%4096 == 0 {
		for _, client := range slices.Sorted(maps.Keys(r)) {
			r.prune(client, 0, cutoff)
		}
	}
}

// prune forgets client's answers, lowest sequence number first, while the
// lowest is below acked or answers a request from before cutoff.
func (r stReplies) prune(client string, acked uint64, cutoff int64) {
	c := r[client]
	if c == nil {
		return
	}
	for c.head < len(c.seqs) {
		seq := c.seqs[c.head]
		if seq >= acked && c.bySeq[seq].now >= cutoff {
			break
		}
		delete(c.bySeq, seq)
		c.head++
	}
	switch {
	case c.head == len(c.seqs):
		delete(r, client)
	case c.head > 1024 && c.head > len(c.seqs)/2:
		c.seqs = slices.Clone(c.seqs[c.head:]) // let the forgotten prefix go
		c.head = 0
	}
}

// each calls fn for client's answers in increasing sequence order.
func (c *stClient) each(fn func(seq uint64, rep stReply) error) error {
	for _, seq := range c.seqs[c.head:] {
		if err := fn(seq, c.bySeq[seq]); err != nil {
			return err
		}
	}
	return nil
}
