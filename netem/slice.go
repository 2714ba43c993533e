package netem

import "time"

// pieceLen is how much of n bytes may go in one write: a Slice fault cuts
// writes to its chunk size, a Bandwidth fault to 10 ms worth of its rate.
func (st *pipeState) pieceLen(n int) int {
	if st == nil {
		return n
	}
	if st.chunk > 0 && n > st.chunk {
		n = st.chunk
	}
	if st.rate > 0 {
		piece := int(max(1, st.rate/ratePieces))
		if st.burst > 0 {
			piece = max(piece, min(int(st.burst), 64<<10)) // a burst leaves in one write
		}
		n = min(n, piece)
	}
	return n
}

// slicePause is the pause after each piece of a sliced write.
func (st *pipeState) slicePause() time.Duration {
	if st == nil || st.chunk == 0 {
		return 0
	}
	return st.pause
}
