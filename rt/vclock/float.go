package vclock

import (
	"math"
	"strconv"
)

// TDFFromFloat is the factor a float64 written in a spec or a config (tdf:
// 2.5) stands for, exactly as `vmux run --tdf` would read its decimal form:
// at most 9 decimal places, within [MinTDF, MaxTDF]. Every place that takes
// a float factor validates it with this, so a value accepted there is one
// that dilation accepts.
func TDFFromFloat(k float64) (TDF, error) {
	if math.IsNaN(k) || math.IsInf(k, 0) || k <= 0 {
		return TDF{}, &ParseError{Input: strconv.FormatFloat(k, 'g', -1, 64), Reason: "must be a positive number between " + MinTDF.String() + " and " + MaxTDF.String(), Err: ErrBadTDF}
	}
	return ParseTDF(strconv.FormatFloat(k, 'f', -1, 64))
}

// ShareFromFloat is the CPU share nearest to s in 9 decimal places (a
// derived share such as 0.5/3 has no exact decimal form), within
// [MinShare, 1].
func ShareFromFloat(s float64) (Share, error) {
	if math.IsNaN(s) || math.IsInf(s, 0) || s <= 0 {
		return Share{}, &ParseError{Input: strconv.FormatFloat(s, 'g', -1, 64), Reason: "must be in (0, 1] and at least " + MinShare.String(), Err: ErrBadShare}
	}
	return ParseShare(strconv.FormatFloat(s, 'f', 9, 64))
}
