package scenarios

import "fmt"

// wholeNumberKeys are the fields that hold counts, codes and levels: the
// decoder would quietly truncate 2.5 to 2 (and 0.9 to 0) in them.
var wholeNumberKeys = map[string]bool{
	"count": true, "qos": true, "keys": true, "max_lost": true, "max_duplicates": true, "min_messages": true,
	"chunk_size": true, "protocol": true, "devices": true, "code": true, "max_connecting": true, "size": true,
	"max_attempts": true,
}

// validateIntegers refuses a fraction written where a whole number belongs,
// naming where: "count: 2.5" is a typo or a misunderstanding, never 2.
func (sc *Scenario) validateIntegers(c *checker) {
	if sc.pos == nil {
		return
	}
	fr := sc.pos.ix.Fractions(wholeNumberKeys)
	if len(fr) == 0 {
		return
	}
	// A check on the truncated value ("must be at least 1, got 0" for 0.9)
	// would only confuse: the fraction is the problem to report.
	truncated := map[string]bool{}
	for _, f := range fr {
		truncated[f.Path] = true
	}
	kept := c.errs[:0]
	for _, e := range c.errs {
		if !truncated[e.Field] {
			kept = append(kept, e)
		}
	}
	c.errs = kept
	for _, f := range fr {
		c.errs = append(c.errs, &Error{Field: f.Path, Line: f.Pos.Line, Column: f.Pos.Column,
			Msg: fmt.Sprintf("must be a whole number, not %s", f.Text)})
	}
}
