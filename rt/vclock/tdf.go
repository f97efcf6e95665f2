package vclock

import (
	"math"
	"math/bits"
	"strconv"
	"strings"
)

// TDF is a time-dilation factor k = Num/Den, kept as a reduced rational so
// that "1/3" stays exact. k > 1 slows perceived time, k < 1 speeds it up.
// The zero value is invalid; build one with ParseTDF or NewTDF.
type TDF struct{ Num, Den uint64 }

// Bounds on k: beyond them mult = 2^32/k loses precision (k too large) or
// virtual time overflows int64 too soon (k too small).
var (
	MinTDF = TDF{1, 1000}
	MaxTDF = TDF{10000, 1}
	// One is k = 1: virtual time equals real time.
	One = TDF{1, 1}
)

// maxTerm bounds numerators and denominators so that products of two terms
// (TDF x share) fit in 64 bits.
const maxTerm = 1_000_000_000

// NewTDF returns num/den reduced, or an error if it is out of range.
func NewTDF(num, den uint64) (TDF, error) {
	k, err := newRatio(num, den, ErrBadTDF)
	if err != nil {
		return TDF{}, err
	}
	t := TDF(k)
	if err := t.Validate(); err != nil {
		return TDF{}, err
	}
	return t, nil
}

// ParseTDF parses "10", "2.5", "0.5" or "1/3".
func ParseTDF(s string) (TDF, error) {
	r, err := parseRatio(s, ErrBadTDF)
	if err != nil {
		return TDF{}, err
	}
	k := TDF(r)
	if err := k.Validate(); err != nil {
		return TDF{}, &ParseError{Input: s, Reason: "must be between " + MinTDF.String() + " and " + MaxTDF.String(), Err: ErrBadTDF}
	}
	return k, nil
}

// Validate checks that k is a reduced positive rational in [MinTDF, MaxTDF].
func (k TDF) Validate() error {
	if k.Num == 0 || k.Den == 0 || k.Num > maxTerm || k.Den > maxTerm ||
		less(ratio(k), ratio(MinTDF)) || less(ratio(MaxTDF), ratio(k)) {
		return &ParseError{Input: k.String(), Reason: "must be a positive rational between " + MinTDF.String() + " and " + MaxTDF.String(), Err: ErrBadTDF}
	}
	return nil
}

// String formats k as "10", "5/2" or "1/3" (ParseTDF reads it back).
func (k TDF) String() string { return ratio(k).String() }

// Float64 is k as a float, for display only.
func (k TDF) Float64() float64 { return float64(k.Num) / float64(k.Den) }

// Mult returns round(2^32 / k), the fixed-point rate of virtual time per
// real nanosecond. k must be valid.
func (k TDF) Mult() uint64 { return fixedInverse(k.Num, k.Den) }

// fixedInverse returns round(2^32 * den / num), saturating at MaxUint64.
func fixedInverse(num, den uint64) uint64 {
	// 128-bit numerator den<<32 + num/2, then divide by num.
	hi, lo := den>>32, den<<32
	var c uint64
	lo, c = bits.Add64(lo, num/2, 0)
	hi += c
	if hi >= num {
		return math.MaxUint64
	}
	q, _ := bits.Div64(hi, lo, num)
	return q
}

// ratio is an unsigned rational used by TDF and Share.
type ratio struct{ Num, Den uint64 }

func (r ratio) String() string {
	if r.Den == 1 {
		return strconv.FormatUint(r.Num, 10)
	}
	return strconv.FormatUint(r.Num, 10) + "/" + strconv.FormatUint(r.Den, 10)
}

// less reports a < b exactly (terms are <= maxTerm, products fit).
func less(a, b ratio) bool {
	ah, al := bits.Mul64(a.Num, b.Den)
	bh, bl := bits.Mul64(b.Num, a.Den)
	return ah < bh || (ah == bh && al < bl)
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func newRatio(num, den uint64, kind error) (ratio, error) {
	if num == 0 || den == 0 {
		return ratio{}, &ParseError{Input: ratio{num, den}.String(), Reason: "must be positive", Err: kind}
	}
	g := gcd(num, den)
	num, den = num/g, den/g
	if num > maxTerm || den > maxTerm {
		return ratio{}, &ParseError{Input: ratio{num, den}.String(), Reason: "too precise: use at most 9 significant digits", Err: kind}
	}
	return ratio{num, den}, nil
}

// parseRatio reads "N", "N.F" or "N/D" with decimal digits only.
func parseRatio(s string, kind error) (ratio, error) {
	bad := func(reason string) (ratio, error) {
		return ratio{}, &ParseError{Input: s, Reason: reason, Err: kind}
	}
	t := strings.TrimSpace(s)
	if t == "" {
		return bad("empty: give a positive number such as 10, 2.5, 0.5 or 1/3")
	}
	if strings.HasPrefix(t, "-") {
		return bad("must be positive (k > 0)")
	}
	if n, d, ok := strings.Cut(t, "/"); ok {
		num, err1 := parseDigits(n)
		den, err2 := parseDigits(d)
		if err1 != nil || err2 != nil {
			return bad("not a fraction of whole numbers: use a form such as 1/3")
		}
		if num == 0 || den == 0 {
			return bad("must be positive with a nonzero denominator")
		}
		r, err := newRatio(num, den, kind)
		if err != nil {
			return bad(err.(*ParseError).Reason)
		}
		return r, nil
	}
	ip, fp, _ := strings.Cut(t, ".")
	if ip == "" && fp == "" {
		return bad("not a number: use a form such as 10, 2.5 or 1/3")
	}
	if len(fp) > 9 {
		return bad("too precise: use at most 9 decimal places")
	}
	whole, err := parseDigits(orZero(ip))
	if err != nil {
		return bad("not a number: use a form such as 10, 2.5 or 1/3")
	}
	frac, err := parseDigits(orZero(fp))
	if err != nil {
		return bad("not a number: use a form such as 10, 2.5 or 1/3")
	}
	den := uint64(1)
	for range len(fp) {
		den *= 10
	}
	if whole > maxTerm {
		return bad("too large")
	}
	num := whole*den + frac
	if num == 0 {
		return bad("must be positive (k > 0)")
	}
	r, err := newRatio(num, den, kind)
	if err != nil {
		return bad(err.(*ParseError).Reason)
	}
	return r, nil
}

func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}

// parseDigits accepts only ASCII digits (no sign, no spaces, no exponent).
func parseDigits(s string) (uint64, error) {
	if s == "" {
		return 0, strconv.ErrSyntax
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, strconv.ErrSyntax
		}
	}
	return strconv.ParseUint(s, 10, 64)
}
