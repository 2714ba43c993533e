package targets

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"time"
)

// Check says, without starting anything, whether t could run here: a
// container target's image is present and Docker answers, an external
// broker accepts a TCP connection. It returns an error wrapping
// ErrUnavailable that says why not. `run --dry-run` uses it so a dry run
// fails on the same target a real run would.
func Check(ctx context.Context, t Target) error {
	switch t := t.(type) {
	case *Container:
		return t.checkImage(ctx)
	case *External:
		for _, raw := range t.URLs {
			u, err := url.Parse(raw)
			if err != nil {
				return fmt.Errorf("%s: %v: %w", t.Name(), err, ErrUnavailable)
			}
			d := net.Dialer{Timeout: 3 * time.Second}
			c, err := d.DialContext(ctx, "tcp", u.Host)
			if err != nil {
				return fmt.Errorf("%s: cannot reach %s: %v: %w", t.Name(), u.Host, err, ErrUnavailable)
			}
			c.Close()
		}
	}
	return nil
}
