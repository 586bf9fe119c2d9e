//go:build race

package release

// raceEnabled shrinks load tests: the race detector slows JetStream a lot.
const raceEnabled = true
