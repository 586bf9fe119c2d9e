package rollout

import "math"

// Z is the two-sided standard normal quantile of a confidence level: the
// z with P(|N(0,1)| ≤ z) = confidence, so Z(0.95) = 1.959964. Confidence
// outside (0, 1) is clamped just inside it.
func Z(confidence float64) float64 {
	if math.IsNaN(confidence) || confidence <= 0 {
		return 0
	}
	if confidence >= 1 {
		confidence = math.Nextafter(1, 0)
	}
	return math.Sqrt2 * math.Erfinv(confidence)
}

// Wilson is the Wilson score interval of k failures among n devices at
// quantile z:
//
//	p̂ = k/n
//	centre = (p̂ + z²/2n) / (1 + z²/n)
//	half   = z·√(p̂(1−p̂)/n + z²/4n²) / (1 + z²/n)
//
// returned as (centre − half, centre + half), clamped to [0, 1]. With no
// devices (n = 0) nothing is known: (0, 1). k above n counts as n.
func Wilson(k, n uint64, z float64) (lower, upper float64) {
	if n == 0 {
		return 0, 1
	}
	if k > n {
		k = n
	}
	nf := float64(n)
	p := float64(k) / nf
	z2 := z * z
	denom := 1 + z2/nf
	centre := (p + z2/(2*nf)) / denom
	half := z * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf)) / denom
	lower, upper = centre-half, centre+half
	// Exact ends: no failure has lower bound 0, all failing upper bound 1.
	if k == 0 || lower < 0 {
		lower = 0
	}
	if k == n || upper > 1 {
		upper = 1
	}
	return lower, upper
}
