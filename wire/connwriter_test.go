package wire

import (
	"bytes"
	"errors"
	"testing"
)

// failingWriter fails every write.
type failingWriter struct{}

func (failingWriter) Write(p []byte) (int, error) { return 0, errors.New("link down") }

// TestConnWriterHoldsLargePayloads checks that a small DATA payload is
// copied and its request answered at once, while a large one is answered
// only after the flush that writes it, and that everything goes out in
// order.
func TestConnWriterHoldsLargePayloads(t *testing.T) {
	var out bytes.Buffer
	w := newConnWriter(&out)
	small := &dataReq{p: []byte("small"), done: make(chan error, 1)}
	large := &dataReq{p: bytes.Repeat([]byte("L"), copyMax+1), done: make(chan error, 1)}
	w.copyIn([]byte("<ctrl>"))
	w.data([]byte("<h1>"), small.p, small)
	select {
	case err := <-small.done:
		if err != nil {
			t.Fatalf("small payload answered %v", err)
		}
	default:
		t.Fatal("small payload not answered once copied")
	}
	small.p[0] = 'X' // the caller may reuse it now
	w.data([]byte("<h2>"), large.p, large)
	w.copyIn([]byte("<ctrl2>"))
	select {
	case err := <-large.done:
		t.Fatalf("large payload answered (%v) before it was written", err)
	default:
	}
	if out.Len() != 0 {
		t.Fatalf("wrote %d bytes before the flush", out.Len())
	}
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	if err := <-large.done; err != nil {
		t.Fatalf("large payload answered %v", err)
	}
	want := "<ctrl><h1>small<h2>" + string(large.p) + "<ctrl2>"
	if out.String() != want {
		t.Fatalf("wrote %q…, want %q…", out.String()[:30], want[:30])
	}
	if w.buffered() != 0 {
		t.Fatalf("%d bytes still buffered after the flush", w.buffered())
	}
	// Reused after a flush: only the new frames go out.
	out.Reset()
	w.data([]byte("<h3>"), large.p, large)
	if err := w.flush(); err != nil || out.String() != "<h3>"+string(large.p) {
		t.Fatalf("second flush: %v, wrote %d bytes", err, out.Len())
	}
	<-large.done
}

// TestConnWriterFailureAnswersHeld checks that a failed write answers the
// held requests with the error instead of leaving their streams waiting.
func TestConnWriterFailureAnswersHeld(t *testing.T) {
	w := newConnWriter(failingWriter{})
	reqs := []*dataReq{
		{p: make([]byte, copyMax+1), done: make(chan error, 1)},
		{p: make([]byte, 2*copyMax), done: make(chan error, 1)},
	}
	for _, r := range reqs {
		w.data([]byte("hdr"), r.p, r)
	}
	if err := w.flush(); err == nil {
		t.Fatal("flush to a failing writer succeeded")
	}
	for i, r := range reqs {
		if err := <-r.done; err == nil {
			t.Errorf("request %d answered nil after a failed write", i)
		}
	}
}
