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

// stReplies maps a client to its recent answers by sequence number. It is
// part of the state: replicas must forget alike, so pruning goes by the
// requests' Now, never a clock.
type stReplies map[string]map[uint64]stReply

// stReply is one remembered answer and the Now of its request.
type stReply struct {
	now  int64
	resp *MetaResponse
}

// lookup returns the remembered answer to req, if any.
func (r stReplies) lookup(req *MetaRequest) (*MetaResponse, bool) {
	rep, ok := r[req.Client][req.Seq]
	if !ok {
		return nil, false
	}
	c := *rep.resp
	return &c, true
}

// record remembers resp as the answer to req, and forgets the client's
// answers older than wire.ReplyMemory before req.Now. Every 4096th
// record of a client also prunes the other clients, so that clients gone
// quiet are forgotten too.
func (r stReplies) record(req *MetaRequest, resp *MetaResponse) {
	if len(req.Client) > stMaxClientID {
		return
	}
	m := r[req.Client]
	if m == nil {
		m = map[uint64]stReply{}
		r[req.Client] = m
	}
	c := *resp
	m[req.Seq] = stReply{now: req.Now, resp: &c}
	cutoff := req.Now - wire.ReplyMemory
	r.prune(req.Client, cutoff)
	if req.Seq%4096 == 0 {
		for _, client := range slices.Sorted(maps.Keys(r)) {
			r.prune(client, cutoff)
		}
	}
}

// prune forgets client's answers to requests before cutoff.
func (r stReplies) prune(client string, cutoff int64) {
	m := r[client]
	for seq, rep := range m {
		if rep.now < cutoff {
			delete(m, seq)
		}
	}
	if len(m) == 0 {
		delete(r, client)
	}
}
