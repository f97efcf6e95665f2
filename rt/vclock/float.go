package vclock

import (
	"math"
	"strconv"
)

// ShareFromFloat is the CPU share nearest to s in 9 decimal places (a
// derived share such as 0.5/3 has no exact decimal form), within
// [MinShare, 1].
func ShareFromFloat(s float64) (Share, error) {
	if math.IsNaN(s) || math.IsInf(s, 0) || s <= 0 {
		return Share{}, &ParseError{Input: strconv.FormatFloat(s, 'g', -1, 64), Reason: "must be in (0, 1] and at least " + MinShare.String(), Err: ErrBadShare}
	}
	return ParseShare(strconv.FormatFloat(s, 'f', 9, 64))
}
