package rollout_test

import (
	"fmt"

	"github.com/capstan-io/capstan/rollout"
)

// The worked example of docs/ROLLOUTS.md.
func ExampleGate() {
	s := rollout.DefaultSettings()
	z := rollout.Z(s.Confidence)
	lo, hi := rollout.Wilson(12, 40, z)
	fmt.Printf("z %.4f; 12 of 40: %.4f–%.4f\n", z, lo, hi)
	lo, hi = rollout.Wilson(10, 2000, z)
	fmt.Printf("10 of 2000: %.4f–%.4f\n", lo, hi)

	base := rollout.Counts{Attempts: 2100, Failures: 21, Active: 2000, Crashed: 10}
	g := rollout.Gate(rollout.Counts{Attempts: 40, Failures: 12, Active: 60, Crashed: 5}, base, s)
	for _, v := range g.Verdicts {
		fmt.Println(v.Failing, v.Reason)
	}
	g = rollout.Gate(rollout.Counts{Attempts: 40, Failures: 1, Active: 60, Crashed: 4}, base, s)
	fmt.Println(g.Failing, g.Worst.Reason)
	// Output:
	// z 1.9600; 12 of 40: 0.1807–0.4543
	// 10 of 2000: 0.0027–0.0092
	// true install failures 12 of 40 devices (30.0 %, 95 % lower bound 18.1 %) above the 5.0 % threshold
	// true crashes 5 of 60 devices (8.3 %, 95 % lower bound 3.6 %) above the base bundle's 95 % upper bound 0.9 % (10 of 2000 devices)
	// false crashes 4 of 60 devices: too few to decide (the gate needs 20 devices and 5 failing)
}
