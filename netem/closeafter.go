package netem

// budget trims b to what the CloseAfter faults on st still allow and books
// it against every one of them. cut is the fault whose budget b uses up: the
// caller writes the trimmed b and then closes the link, even mid-packet.
func (st *pipeState) budget(b []byte) ([]byte, *pipeFault) {
	if st == nil || len(st.limits) == 0 {
		return b, nil
	}
	var cut *pipeFault
	for _, pf := range st.limits {
		if r := pf.remaining.Load(); int64(len(b)) >= r {
			b = b[:r]
			cut = pf
		}
	}
	for _, pf := range st.limits {
		pf.remaining.Add(-int64(len(b)))
	}
	return b, cut
}
