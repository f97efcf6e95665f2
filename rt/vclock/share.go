package vclock

// Share is the fraction of a CPU core a dilated process tree gets, in
// (0, 1]. The perceived CPU speed is s = share x k (DESIGN.md): under
// DieCast (share = 1/k) CPU-time clocks read real CPU time.
type Share struct{ Num, Den uint64 }

// FullShare is an uncapped tree: one whole core's worth.
var FullShare = Share{1, 1}

// MinShare bounds the share from below so that CPU rates stay representable.
var MinShare = Share{1, 10000}

// ParseShare parses "1", "0.25" or "1/4".
func ParseShare(s string) (Share, error) {
	r, err := parseRatio(s, ErrBadShare)
	if err != nil {
		return Share{}, err
	}
	sh := Share(r)
	if err := sh.Validate(); err != nil {
		return Share{}, &ParseError{Input: s, Reason: "must be in (0, 1] and at least " + MinShare.String(), Err: ErrBadShare}
	}
	return sh, nil
}

// Validate checks MinShare <= share <= 1.
func (s Share) Validate() error {
	if s.Num == 0 || s.Den == 0 || s.Num > maxTerm || s.Den > maxTerm ||
		s.Num > s.Den || less(ratio(s), ratio(MinShare)) {
		return &ParseError{Input: s.String(), Reason: "must be in (0, 1] and at least " + MinShare.String(), Err: ErrBadShare}
	}
	return nil
}

func (s Share) String() string { return ratio(s).String() }

// CPUMult returns round(2^32 / s), s = share x k: virtual CPU time is
// (real CPU time * CPUMult) >> 32. Both arguments must be valid.
func CPUMult(share Share, k TDF) uint64 {
	// s = (share.Num*k.Num) / (share.Den*k.Den); terms <= 1e9 so products fit.
	return fixedInverse(share.Num*k.Num, share.Den*k.Den)
}
