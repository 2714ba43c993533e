package netpark

// table holds the parked connections by socket descriptor. Descriptors are
// small integers that the kernel hands out densely (lowest free first), so
// an array indexed by descriptor costs one 32-byte entry per parked
// connection, where a map cost about 96 (key, control byte and a load
// factor between 7/16 and 7/8 at that size): with a broker's tens of
// thousands of idle connections parked, that difference is 3% of the memory
// an idle connection costs. Where only part of a process's descriptors
// are parked (a test that holds both ends of its connections), the array
// costs 32 bytes per descriptor up to the highest parked, still less than
// a map while at least a third of them are parked. The array is split into chunks of tableChunk
// entries, allocated when a descriptor in their range is first parked, so
// a process with one parked connection pays 4 KB and a high descriptor
// does not make the whole array. Chunks are kept once made (descriptors
// are reused), as a map keeps its buckets.
//
// A table is not safe for concurrent use: the Poller guards it with mu.
type table struct {
	chunks [][]parked // chunks[fd/tableChunk][fd%tableChunk]; an entry with a nil conn is free
	n      int        // entries in use
}

const tableChunk = 128

// get returns fd's entry, or nil when fd is not parked.
func (t *table) get(fd int) *parked {
	if fd < 0 {
		return nil
	}
	i := fd / tableChunk
	if i >= len(t.chunks) || t.chunks[i] == nil {
		return nil
	}
	e := &t.chunks[i][fd%tableChunk]
	if e.conn == nil {
		return nil
	}
	return e
}

// put stores e (whose conn is not nil) for fd, which is not parked.
func (t *table) put(fd int, e parked) {
	i := fd / tableChunk
	if i >= len(t.chunks) {
		// Grows by what is needed: the directory is 24 bytes per chunk.
		t.chunks = append(t.chunks, make([][]parked, i+1-len(t.chunks))...)
	}
	if t.chunks[i] == nil {
		t.chunks[i] = make([]parked, tableChunk)
	}
	t.chunks[i][fd%tableChunk] = e
	t.n++
}

// del frees fd's entry, which is in use.
func (t *table) del(fd int) {
	t.chunks[fd/tableChunk][fd%tableChunk] = parked{}
	t.n--
}

// each calls f for every entry in use; f may del the entry it is given.
func (t *table) each(f func(fd int, e parked)) {
	for i, c := range t.chunks {
		for j := range c {
			if c[j].conn != nil {
				f(i*tableChunk+j, c[j])
			}
		}
	}
}
