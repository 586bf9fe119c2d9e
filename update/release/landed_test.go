package release

import (
	"testing"

	"github.com/nats-io/nats.go"
)

// A write whose answer was lost is recognised as stored by any of its
// keys, even when others have rewritten the rest since.
func TestLandedSeesABatchWhoseKeysMovedOn(t *testing.T) {
	b := testBus(t, t.TempDir(), "127.0.0.1:-1")
	s := testStore(t, b.JetStream, Options{})
	ctx := tctx(t)
	msgs := []*nats.Msg{s.putMsg(tokenKey("aa"), []byte(`{"hash":"a"}`)), s.putMsg(tokenKey("bb"), []byte(`{"hash":"b"}`))}
	seq, err := s.commit(ctx, msgs)
	must(t, err)
	id := msgs[0].Header.Get(hdrWriteID)
	if got, ok, err := s.landed(ctx, msgs, id); err != nil || !ok || got != seq {
		t.Fatalf("landed = %d %v %v, want %d true", got, ok, err, seq)
	}
	// Another write rewrites the batch's last key.
	_, err = s.commit(ctx, []*nats.Msg{s.putMsg(tokenKey("bb"), []byte(`{"hash":"b2"}`))})
	must(t, err)
	if got, ok, err := s.landed(ctx, msgs, id); err != nil || !ok || got != seq {
		t.Fatalf("after the last key moved on: landed = %d %v %v, want %d true", got, ok, err, seq)
	}
	if _, ok, err := s.landed(ctx, msgs, "another-write"); err != nil || ok {
		t.Fatalf("a write that never happened: landed %v %v", ok, err)
	}
}
