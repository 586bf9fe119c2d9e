package schema_test

import (
	"testing"

	"github.com/capstan-io/capstan/schema"
)

// The dead-letter stream has the events stream's replicas: a message in it
// is the only copy left of what a device sent.
func TestDeadLetterStreamReplicas(t *testing.T) {
	for in, want := range map[int]int{0: 1, 1: 1, 3: 3, 5: 5} {
		if got := schema.DeadLetterStreamConfig(in).Replicas; got != want {
			t.Errorf("DeadLetterStreamConfig(%d).Replicas = %d, want %d", in, got, want)
		}
	}
	l := schema.DefaultStreamLimits()
	l.Replicas = 3
	if got := schema.EventsStreamConfig(l).Replicas; got != 3 {
		t.Errorf("events stream replicas %d, want 3", got)
	}
}
